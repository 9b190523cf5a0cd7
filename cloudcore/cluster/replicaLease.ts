import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { errorMessage } from './etcdCalls.js';
import { KeptLease } from './keptLease.js';

/**
 * The replica's lease: everything a replica registers (its registry entry, the sessions it holds)
 * is put under it, so a replica that dies leaves nothing behind once the TTL has run out.
 *
 * When the lease is lost (etcd said it is gone, or it could not be renewed within its TTL) the
 * replica emits 'lost', revokes the old lease as a courtesy (so its keys vanish now rather than
 * linger until the TTL), and grants a new one, retrying until etcd answers; 'granted' tells the
 * registries to put their entries again under the new id.
 */

export const DEFAULT_REPLICA_LEASE_SECONDS = 10;

export interface ReplicaLeaseOptions {
  /** Setting `--replica-lease-seconds` (default 10). */
  ttlSeconds?: number;
  /** Pause between two failed grants. */
  retryMs?: number;
}

export interface ReplicaLeaseEvents {
  granted: [leaseId: string];
  lost: [reason: string];
  /** A transient failure (a keepalive or a grant that failed); the lease is not lost for it. */
  warning: [message: string];
}

export class ReplicaLease extends EventEmitter<ReplicaLeaseEvents> {
  private current: KeptLease | undefined;
  private closed = false;
  readonly ttlSeconds: number;
  private readonly retryMs: number;

  private constructor(private readonly client: Etcd3, opts: ReplicaLeaseOptions) {
    super();
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_REPLICA_LEASE_SECONDS;
    this.retryMs = opts.retryMs ?? 500;
  }

  /** Grants the first lease; rejects if etcd cannot grant one (the replica cannot start without it). */
  static async start(client: Etcd3, opts: ReplicaLeaseOptions = {}): Promise<ReplicaLease> {
    const lease = new ReplicaLease(client, opts);
    lease.adopt(await KeptLease.grant(client, { ttlSeconds: lease.ttlSeconds }));
    return lease;
  }

  /** The live lease's id, or undefined between a loss and the next grant. */
  get id(): string | undefined {
    return this.current?.alive ? this.current.id : undefined;
  }

  /**
   * Resolves with a live lease id, waiting through a re-grant if one is under way, for at most
   * `timeoutMs` (without etcd a re-grant never ends, and a claim must not wait forever).
   */
  async leaseId(timeoutMs = 5_000): Promise<string> {
    const giveUpAt = Date.now() + timeoutMs;
    for (;;) {
      if (this.closed) throw new Error('the replica lease is closed');
      const id = this.id;
      if (id) return id;
      const left = giveUpAt - Date.now();
      if (left <= 0) throw new Error(`no replica lease: it was lost and etcd has not granted a new one within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(left, 50)));
    }
  }

  private adopt(lease: KeptLease): void {
    this.current = lease;
    lease.on('keepaliveFailed', (err) => this.emit('warning', `replica lease keepalive failed: ${err.message}`));
    lease.once('lost', (reason) => {
      if (this.closed || this.current !== lease) return;
      this.emit('lost', reason);
      void this.regrant(lease);
    });
    this.emit('granted', lease.id);
  }

  private async regrant(old: KeptLease): Promise<void> {
    await old.revoke();
    while (!this.closed) {
      try {
        const lease = await KeptLease.grant(this.client, { ttlSeconds: this.ttlSeconds });
        if (this.closed) {
          await lease.revoke();
          return;
        }
        this.adopt(lease);
        return;
      } catch (err) {
        this.emit('warning', `could not grant a new replica lease: ${errorMessage(err)}`);
        await new Promise((resolve) => setTimeout(resolve, this.retryMs));
      }
    }
  }

  /** Revokes the lease (every key under it vanishes at once: a clean shutdown) and stops. */
  async close(): Promise<void> {
    this.closed = true;
    await this.current?.revoke();
  }

  /** Stops renewing without revoking, as a crashed replica would (tests: entries vanish after the TTL). */
  abandon(): void {
    this.closed = true;
    this.current?.release();
  }
}
