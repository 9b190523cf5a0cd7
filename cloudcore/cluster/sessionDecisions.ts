import { z } from 'zod';
import { NameSchema } from '../../protocol/index.js';
import type { WriteGuard } from '../store/store.js';
import type { ViewChange, ViewEntry } from './viewState.js';

/** What a session-registry event means for this replica, apart from any I/O (unit-tested alone). */

export const SESSIONS_PREFIX = 'cluster/sessions/';

export const sessionEntrySchema = z.strictObject({
  /** The replica that holds the node's edge session. */
  replica: z.string().min(1),
  /** When that session began (ISO 8601). */
  since: z.string().datetime(),
});

export type SessionEntry = z.infer<typeof sessionEntrySchema>;

export function parseNodeName(node: string): string {
  const parsed = NameSchema.safeParse(node);
  if (!parsed.success) throw new Error(`node name ${JSON.stringify(node)}: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

/** The replica named by a view entry, or undefined for an entry that does not parse (treated as held by nobody we can route to). */
export function ownerOfEntry(entry: ViewEntry | undefined): string | undefined {
  if (!entry) return undefined;
  try {
    const parsed = sessionEntrySchema.safeParse(JSON.parse(entry.value));
    return parsed.success ? parsed.data.replica : undefined;
  } catch {
    return undefined;
  }
}

/** The hub marks a node Offline only under this guard: nobody (this replica included) holds its session now. */
export function absentSessionGuard(node: string): WriteGuard {
  return { key: SESSIONS_PREFIX + node, createRevision: 0, lostMessage: `node ${node} is connected to another replica` };
}

/**
 * A claim this replica made, as the hub knows it (`claimedAt`, what claim() returned) and as it
 * stands in etcd now (`current`: a re-claim after a lost lease moves it).
 */
export interface HeldClaim {
  claimedAt: number;
  current: number;
}

/**
 * Whether a change means another replica took over a node this replica holds: a put naming
 * another replica, newer than our claim. A delete is not a takeover (our lease ended, or the
 * claim was released), and neither is a put by this replica (a newer session here).
 */
export function takeoverIn(change: ViewChange, held: ReadonlyMap<string, HeldClaim>, self: string): { node: string; newOwner: string } | undefined {
  if (change.type !== 'put') return undefined;
  const claim = held.get(change.key);
  if (!claim || change.entry.modRevision <= claim.current) return undefined;
  const owner = ownerOfEntry(change.entry);
  if (owner === self) return undefined;
  return { node: change.key, newOwner: owner ?? 'an unknown replica' };
}

/** The claim `release(node, modRevision)` refers to: the hub may hold the first revision of a claim that was re-made since. */
export function claimReleased(claim: HeldClaim | undefined, modRevision: number): HeldClaim | undefined {
  if (!claim) return undefined;
  return claim.claimedAt === modRevision || claim.current === modRevision ? claim : undefined;
}
