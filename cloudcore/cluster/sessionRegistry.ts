import type { Etcd3 } from 'etcd3';
import type { WriteGuard } from '../store/store.js';
import { clusterKey, createRevisionIs, deadline, deleteOp, errorMessage, modRevisionIs, putOp, retryOnce, txn } from './etcdCalls.js';
import { PrefixView } from './prefixView.js';
import type { ReplicaLease } from './replicaLease.js';
import {
  absentSessionGuard, claimReleased, ownerOfEntry, parseNodeName, SESSIONS_PREFIX, takeoverIn,
  type HeldClaim, type SessionEntry,
} from './sessionDecisions.js';
import type { ViewChange } from './viewState.js';

/**
 * Which replica holds each node's edge session: the holder is the node's authority (it routes the
 * node's logs/exec, marks it Ready/Offline). `<p>cluster/sessions/<node>` = {replica, since},
 * under the replica lease, so a dead replica's sessions vanish after the TTL.
 * - claim: one plain put; it always wins, because the newest link is the live one.
 * - release: delete only while mod_revision is still our claim's, so a replica whose session
 *   ended never removes the newer claim of the replica the node moved to.
 * - the view: one prefix watch of every session (about 30,000 keys at our scale), lookups from memory.
 * - takeover: when another replica claims a node this one holds, `onTakenOver` fires here so the
 *   hub closes its stale session and drops what it queued (the stale-queue bug of kubeedge PR #3244).
 */

export interface SessionRegistryOptions {
  onWarning?(message: string): void;
  resyncMs?: number;
  /** Re-claims in flight at once after a lost lease (each is one txn). */
  reclaimConcurrency?: number;
  /**
   * Deadline of a claim or release (default 5 s): longer than other calls because claims come in
   * bursts (every node of a dead replica reconnects at once) and queue behind each other, and a
   * claim that failed only for its deadline costs a session.
   */
  callMs?: number;
}

/** Back-off of the re-claims that failed after a lost lease: 1 s, doubling, at most 30 s. */
const RECLAIM_RETRY_FIRST_MS = 1_000;
const RECLAIM_RETRY_MAX_MS = 30_000;

export type TakenOverHandler = (node: string, newOwner: string) => void;

export class SessionRegistry {
  private readonly held = new Map<string, HeldClaim>();
  private readonly takenOverHandlers = new Set<TakenOverHandler>();
  private view: PrefixView | undefined;
  private closed = false;

  private readonly callMs: number;
  /** The retry of re-claims that failed, and which pass is current (a new grant supersedes the retries of the last). */
  private reclaimTimer: NodeJS.Timeout | undefined;
  private reclaimPass = 0;

  private constructor(private readonly client: Etcd3, private readonly prefix: string, private readonly lease: ReplicaLease,
    readonly replicaId: string, private readonly opts: SessionRegistryOptions) {
    this.callMs = opts.callMs ?? 5_000;
  }

  static async start(client: Etcd3, prefix: string, lease: ReplicaLease, replicaId: string, opts: SessionRegistryOptions = {}): Promise<SessionRegistry> {
    const registry = new SessionRegistry(client, prefix, lease, replicaId, opts);
    registry.view = await PrefixView.start(client, clusterKey(prefix, SESSIONS_PREFIX), {
      onChange: (changes) => registry.onViewChanges(changes),
      onWarning: opts.onWarning,
      resyncMs: opts.resyncMs,
    });
    lease.on('granted', () => void registry.reclaimAll());
    return registry;
  }

  private key(node: string): Buffer {
    return clusterKey(this.prefix, SESSIONS_PREFIX + node);
  }

  /** Records that this replica now holds the node's session; returns the entry's mod revision (for release). */
  async claim(node: string, since = new Date()): Promise<number> {
    parseNodeName(node);
    const entry: SessionEntry = { replica: this.replicaId, since: since.toISOString() };
    const leaseId = await this.lease.leaseId();
    // A put is idempotent here (same value, same lease): safe to send again.
    const res = await retryOnce(() => this.client.kv.put({ key: this.key(node), value: Buffer.from(JSON.stringify(entry)), lease: leaseId }, deadline(this.callMs)));
    const revision = Number(res.header.revision);
    this.held.set(node, { claimedAt: revision, current: revision });
    // Another replica's claim may already be in the view, seen before ours returned.
    const seen = this.view?.get(node);
    if (seen) this.noticeTakeover({ type: 'put', key: node, entry: seen, previous: undefined });
    return revision;
  }

  /**
   * Forgets this replica's claim if it is still the current one (compare mod_revision, then
   * delete); true if it was deleted. A newer claim, by any replica, stays.
   */
  async release(node: string, modRevision: number): Promise<boolean> {
    const claim = claimReleased(this.held.get(node), modRevision);
    const current = claim?.current ?? modRevision;
    if (claim) this.held.delete(node);
    // Sent again, a delete that went through the first time fails its compare: `false`, and nothing lost.
    const res = await retryOnce(() => txn(this.client, [modRevisionIs(this.key(node), current)], [deleteOp(this.key(node))], [], this.callMs));
    return res.succeeded;
  }

  /** The replica that holds the node's session, from the view. */
  ownerOf(node: string): string | undefined {
    return ownerOfEntry(this.view?.get(node));
  }

  isHeldAnywhere(node: string): boolean {
    return this.view?.get(node) !== undefined;
  }

  /** Nodes whose session this replica holds, as far as it knows. */
  heldNodes(): string[] {
    return [...this.held.keys()];
  }

  /** Calls `handler(node, newOwner)` when another replica claims a node this one holds; returns the unsubscribe. */
  onTakenOver(handler: TakenOverHandler): () => void {
    this.takenOverHandlers.add(handler);
    return () => this.takenOverHandlers.delete(handler);
  }

  absentGuard(node: string): WriteGuard {
    return absentSessionGuard(parseNodeName(node));
  }

  private onViewChanges(changes: readonly ViewChange[]): void {
    for (const change of changes) this.noticeTakeover(change);
  }

  private noticeTakeover(change: ViewChange): void {
    const takeover = takeoverIn(change, this.held, this.replicaId);
    if (!takeover) return;
    this.held.delete(takeover.node);
    for (const handler of this.takenOverHandlers) {
      try {
        handler(takeover.node, takeover.newOwner);
      } catch (err) {
        this.opts.onWarning?.(`a takeover handler for node ${takeover.node} failed: ${errorMessage(err)}`);
      }
    }
  }

  /**
   * After the replica lease was lost and re-granted (its keys are gone with it): claims every node
   * still held here again under the new lease, but only where no one has claimed it meanwhile
   * (create_revision == 0): a node that reconnected elsewhere belongs there now. Claims that fail
   * (etcd busy or out of reach) are tried again with back-off until they hold or the node goes:
   * until then its session runs here with no record, and the record is what keeps other replicas
   * from treating the node as held by no one. A new grant starts a whole pass afresh.
   */
  private async reclaimAll(nodes: readonly string[] = [...this.held.keys()], attempt = 0): Promise<void> {
    clearTimeout(this.reclaimTimer);
    this.reclaimTimer = undefined;
    const pass = ++this.reclaimPass;
    const concurrency = this.opts.reclaimConcurrency ?? 64;
    const failed: Array<{ node: string; error: string }> = [];
    let next = 0;
    const worker = async () => {
      while (next < nodes.length && !this.closed) {
        const node = nodes[next++]!;
        try {
          await this.reclaim(node);
        } catch (err) {
          failed.push({ node, error: errorMessage(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, nodes.length) }, worker));
    if (failed.length === 0 || this.closed || pass !== this.reclaimPass) return;
    // One line per pass, not one per node: a busy etcd fails thousands of these at once.
    const delayMs = Math.min(RECLAIM_RETRY_MAX_MS, RECLAIM_RETRY_FIRST_MS * 2 ** attempt);
    this.opts.onWarning?.(`could not claim ${failed.length} node(s) again after the replica lease was re-granted `
      + `(${failed[0]!.node}: ${failed[0]!.error}); trying them again in ${delayMs / 1000} s`);
    this.reclaimTimer = setTimeout(() => void this.reclaimAll(failed.map((f) => f.node).filter((n) => this.held.has(n)), attempt + 1), delayMs);
    this.reclaimTimer.unref();
  }

  private async reclaim(node: string): Promise<void> {
    const claim = this.held.get(node);
    if (!claim) return;
    const leaseId = await this.lease.leaseId();
    const entry: SessionEntry = { replica: this.replicaId, since: new Date().toISOString() };
    const res = await txn(this.client, [createRevisionIs(this.key(node), 0)], [putOp(this.key(node), JSON.stringify(entry), leaseId)], [], this.callMs);
    if (this.held.get(node) !== claim) return;
    if (res.succeeded) {
      claim.current = res.revision;
      return;
    }
    // Someone holds it. If that is us (a claim() that raced this), keep it; else it is a takeover.
    const seen = this.view?.get(node);
    if (seen) this.noticeTakeover({ type: 'put', key: node, entry: seen, previous: undefined });
  }

  /** Stops the view. Claims stay until their lease ends (the replica lease's close revokes them all). */
  close(): void {
    this.closed = true;
    clearTimeout(this.reclaimTimer);
    this.view?.close();
  }
}
