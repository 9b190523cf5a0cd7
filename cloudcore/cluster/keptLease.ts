import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { deadline, DEFAULT_CALL_MS, errorMessage } from './etcdCalls.js';

/**
 * One etcd lease, granted once and renewed every TTL/3 until it is revoked or lost. Not etcd3's
 * `Lease`: that one keeps retrying a failing keepalive for up to 2×TTL before it says 'lost', long
 * after the lease may have expired in etcd and another replica took what it guarded. Here the
 * lease counts as lost at the first moment we cannot be sure it is still alive:
 * - etcd answers a keepalive with TTL 0 (revoked or expired: the lease is gone);
 * - no keepalive was confirmed before the last confirmed expiry (send time + granted TTL; measured
 *   from the send, not the answer, so a slow answer never stretches it);
 * - in `strict` mode (a leader's lease), any failed keepalive at all, but for one that reached no
 *   etcd member (connection refused), which is tried again at once: otherwise every etcd
 *   member that dies would cost the controllers a step-down while two members still serve; and
 *   but for one that timed out while the lease is still confirmed for longer than another try.
 * A lost lease is never renewed again: its owner grants a new one.
 */

export interface KeptLeaseOptions {
  ttlSeconds: number;
  /** Any failed keepalive makes the lease lost (a leader steps down on any etcd error). */
  strict?: boolean;
  /** Deadline of each etcd call (default 2 s, capped at TTL/3 so a hung call is noticed in time). */
  callMs?: number;
}

export type LeaseLossReason = string;

export interface KeptLeaseEvents {
  lost: [reason: LeaseLossReason];
  keepaliveFailed: [error: Error];
}

export class KeptLease extends EventEmitter<KeptLeaseEvents> {
  private state: 'alive' | 'lost' | 'closed' = 'alive';
  private timer: NodeJS.Timeout | undefined;
  private confirmedUntil: number;

  private constructor(private readonly client: Etcd3, readonly id: string, readonly ttlSeconds: number,
    private readonly strict: boolean, private readonly callMs: number, sentAt: number) {
    super();
    this.confirmedUntil = sentAt + ttlSeconds * 1000;
    this.schedule(this.renewEveryMs);
  }

  /** Grants a lease (rejects if etcd does not grant it within the call deadline). */
  static async grant(client: Etcd3, opts: KeptLeaseOptions): Promise<KeptLease> {
    if (!Number.isInteger(opts.ttlSeconds) || opts.ttlSeconds < 1) throw new RangeError(`a lease TTL is a whole number of seconds ≥ 1, not ${opts.ttlSeconds}`);
    const callMs = Math.min(opts.callMs ?? DEFAULT_CALL_MS, Math.max(300, (opts.ttlSeconds * 1000) / 3));
    const sentAt = Date.now();
    const res = await client.leaseClient.leaseGrant({ TTL: opts.ttlSeconds }, deadline(callMs));
    if (res.error) throw new Error(`etcd refused a lease: ${res.error}`);
    return new KeptLease(client, res.ID, Number(res.TTL), opts.strict ?? false, callMs, sentAt);
  }

  get alive(): boolean {
    return this.state === 'alive';
  }

  /** Until when (ms since epoch) the lease is known to live in etcd, at the latest confirmation. */
  get knownAliveUntil(): number {
    return this.confirmedUntil;
  }

  private get renewEveryMs(): number {
    return (this.ttlSeconds * 1000) / 3;
  }

  private schedule(ms: number): void {
    if (this.state !== 'alive') return;
    this.timer = setTimeout(() => void this.renew(), ms);
  }

  private async renew(): Promise<void> {
    if (this.state !== 'alive') return;
    // A timer that fired after the lease's known expiry means this process stalled: etcd may have
    // expired the lease in the meantime, whatever the next keepalive answers.
    if (Date.now() >= this.confirmedUntil) return this.lose(`the lease's ${this.ttlSeconds} s ran out before it could be renewed (a stalled process or an unreachable etcd)`);
    const sentAt = Date.now();
    try {
      const ttl = await this.keepaliveReachingEtcd();
      if (this.state !== 'alive') return;
      if (ttl <= 0) return this.lose('etcd says the lease is gone (expired or revoked)');
      this.confirmedUntil = sentAt + ttl * 1000;
      this.schedule(this.renewEveryMs);
    } catch (err) {
      if (this.state !== 'alive') return;
      const error = err instanceof Error ? err : new Error(String(err));
      this.emit('keepaliveFailed', error);
      // A leader steps down on any etcd error but one: an answer slower than the call deadline
      // while the lease is still confirmed for longer than another try takes. Under load that is
      // routine, and stepping down for it made leadership flap every few seconds at 30,000 nodes
      // (each new leader re-lists the fleet: more load). Its writes stay fenced meanwhile.
      const slowOnly = isTimeout(error) && this.confirmedUntil - Date.now() > SLOW_RETRY_WINDOW_MS;
      if (this.strict && !slowOnly) return this.lose(`a keepalive failed: ${error.message}`);
      if (Date.now() >= this.confirmedUntil) return this.lose(`no keepalive succeeded before the lease's TTL ran out (last error: ${error.message})`);
      // Try again soon, but not before the failed call's deadline has freed the connection.
      this.schedule(Math.min(this.renewEveryMs / 2, Math.max(100, this.confirmedUntil - Date.now() - this.callMs)));
    }
  }

  /**
   * A keepalive that reached no member (a refused connection: that member is down) says nothing
   * about the lease, and is refused at once: try again, up to 3 tries in all, as etcd3 picks a
   * member at random for each stream. Any other failure counts.
   */
  private async keepaliveReachingEtcd(): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.keepaliveOnce();
      } catch (err) {
        if (attempt >= 3 || !neverReachedEtcd(err) || this.state !== 'alive') throw err;
      }
    }
  }

  /** One keepalive round trip on its own short-lived stream, bounded by the call deadline. */
  private async keepaliveOnce(): Promise<number> {
    const stream = await this.client.leaseClient.leaseKeepAlive(deadline(this.callMs));
    try {
      return await new Promise<number>((resolve, reject) => {
        stream.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
        stream.on('error', reject);
        stream.on('end', () => reject(new Error('the keepalive stream ended without an answer')));
        stream.write({ ID: this.id });
      });
    } finally {
      stream.end();
    }
  }

  private lose(reason: LeaseLossReason): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    clearTimeout(this.timer);
    this.emit('lost', reason);
  }

  /** Stops renewing without telling etcd: the lease (and its keys) expire after the TTL. */
  release(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.timer);
  }

  /** Stops renewing and revokes the lease, deleting every key under it; a failure is left to the TTL. */
  async revoke(): Promise<void> {
    this.release();
    try {
      await this.client.leaseClient.leaseRevoke({ ID: this.id }, deadline(this.callMs));
    } catch (err) {
      // Revoke is a courtesy that makes the keys vanish now; a lease that was not renewed expires anyway.
      if (!/requested lease not found/i.test(errorMessage(err))) this.emit('keepaliveFailed', err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/** A gRPC failure before any etcd member saw the request: the connection itself was refused. */
export function neverReachedEtcd(err: unknown): boolean {
  return /No connection established|ECONNREFUSED/.test(errorMessage(err));
}

/** A leader's lease tolerates a slow keepalive only while at least this long is left to try again. */
const SLOW_RETRY_WINDOW_MS = 500;

/** A call that ran past its deadline (slow, not refused): etcd may yet be fine. */
function isTimeout(err: unknown): boolean {
  return /DEADLINE_EXCEEDED|deadline exceeded/i.test(errorMessage(err));
}
