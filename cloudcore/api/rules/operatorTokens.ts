import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { OperatorRole, OperatorToken, OperatorTokenRequest, OperatorTokenView } from '../../../protocol/index.js';
import { OperatorTokenRequestSchema } from '../../../protocol/index.js';
import { readModifyWrite } from '../../store/readModifyWrite.js';
import { ConflictError, NotFoundError, type Store } from '../../store/store.js';

/**
 * Named operator tokens (`edgectl token operator create alice`): one per person, so the audit
 * log ties an action to someone. A token is `efo_<id>.<secret>`: the id (12 hex digits) finds
 * the record and is what the audit log names; the secret is 32 random bytes of which the store
 * keeps only a sha256. They live in the Store (kind OperatorToken), so replicas sharing the
 * store share them. Revoking deletes the record; an expired one is refused and stays listed
 * until revoked.
 */

const TOKEN_PATTERN = /^efo_([0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;
/** How stale `lastUsedAt` may be: at most one store write per token per minute, not one per request. */
export const LAST_USED_GRANULARITY_MS = 60_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export interface NamedPrincipal {
  id: string;
  name: string;
  role: OperatorRole;
}

export function operatorTokenView(token: OperatorToken): OperatorTokenView {
  return {
    name: token.metadata.name, id: token.spec.id, role: token.spec.role,
    createdAt: token.metadata.creationTimestamp ?? '', expiresAt: token.spec.expiresAt, lastUsedAt: token.status.lastUsedAt,
  };
}

/** Creates the token `request` names; 409 when that name has one already (revoke it first). */
export async function mintOperatorToken(store: Store, request: OperatorTokenRequest, now = new Date()): Promise<{ token: string; view: OperatorTokenView }> {
  const { name, role, ttlSeconds } = OperatorTokenRequestSchema.parse(request);
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const record: OperatorToken = {
    kind: 'OperatorToken',
    metadata: { name },
    spec: { id, role, secretHash: sha256(secret).toString('hex'), expiresAt: new Date(now.getTime() + ttlSeconds * 1000).toISOString() },
    status: { lastUsedAt: null },
  };
  let created: OperatorToken;
  try {
    created = await store.create(record);
  } catch (err) {
    if (err instanceof ConflictError) throw new ConflictError(`operator token "${name}" exists already; revoke it first (edgectl token operator revoke ${name})`);
    throw err;
  }
  return { token: `efo_${id}.${secret}`, view: operatorTokenView(created) };
}

export async function revokeOperatorToken(store: Store, name: string): Promise<OperatorTokenView> {
  try {
    return operatorTokenView(await store.delete('OperatorToken', name));
  } catch (err) {
    if (err instanceof NotFoundError) throw new NotFoundError(`no operator token named "${name}"`);
    throw err;
  }
}

/** True when `presented` has the shape of a named token (so it is worth a store lookup). */
export function looksLikeNamedToken(presented: string): boolean {
  return TOKEN_PATTERN.test(presented);
}

/**
 * The principal a presented named token stands for, or undefined: unknown id, wrong secret
 * (constant-time compare of the hashes), revoked or expired. Records use at most once a
 * minute (see LAST_USED_GRANULARITY_MS); a failed record update does not refuse the request.
 */
export async function verifyOperatorToken(store: Store, presented: string, now = new Date(), onError?: (err: unknown) => void): Promise<NamedPrincipal | undefined> {
  const match = TOKEN_PATTERN.exec(presented);
  if (!match) return undefined;
  const [, id, secret] = match as unknown as [string, string, string];
  const record = (await store.list('OperatorToken')).items.find((t) => t.spec.id === id);
  if (!record) return undefined;
  const stored = Buffer.from(record.spec.secretHash, 'hex');
  const given = sha256(secret);
  if (stored.length !== given.length || !timingSafeEqual(stored, given)) return undefined;
  if (Date.parse(record.spec.expiresAt) <= now.getTime()) return undefined;
  if (isUseStale(record.status.lastUsedAt, now)) {
    recordUse(store, record.metadata.name, id, now).catch((err: unknown) => onError?.(err));
  }
  return { id, name: record.metadata.name, role: record.spec.role };
}

export function isUseStale(lastUsedAt: string | null, now: Date): boolean {
  return lastUsedAt === null || now.getTime() - Date.parse(lastUsedAt) >= LAST_USED_GRANULARITY_MS;
}

async function recordUse(store: Store, name: string, id: string, now: Date): Promise<void> {
  // Revoked (absent) or re-created (another id) meanwhile: nothing to record.
  await readModifyWrite(store, 'OperatorToken', name, (cur) =>
    (cur.spec.id === id && isUseStale(cur.status.lastUsedAt, now) ? { ...cur, status: { lastUsedAt: now.toISOString() } } : undefined));
}
