import type { CallOptions } from '@grpc/grpc-js';
import { GoneError, StoreError, UnavailableError } from '../store.js';

/**
 * How etcd failures reach callers: anything the engine or the transport throws becomes a
 * StoreError. An unreachable member, a lost quorum ("no leader", "context deadline exceeded")
 * and our own deadline are all one thing to a caller (503: nothing is known to be written), and
 * the message names etcd and its endpoints so an operator sees where to look.
 */

/**
 * At most this many etcd calls of one store in flight; the rest wait their turn within their own
 * deadline. Without it a burst (thousands of writes at once) overloads the cluster, attempts time
 * out, and etcd3's retries of them add load on top (measured: 2,000 creates at once failed 503).
 */
export const MAX_CALLS_IN_FLIGHT = 128;

export class EtcdCalls {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly endpoints: readonly string[], readonly timeoutMs: number) {}

  /**
   * Options for one etcd call. The client gives each attempt on one member its own deadline
   * (etcdClient.ts); `run` bounds the whole call. No deadline here: it would be shared by every
   * attempt, and one attempt on a member that just died could use it all up.
   */
  options(): CallOptions {
    return {};
  }

  /**
   * Runs one etcd call within the deadline (an etcd without quorum hangs a put ~12 s, then fails),
   * turning engine and transport failures into StoreErrors. Past the deadline the caller gets 503
   * while the call may still land: "nothing is known to be written", never "nothing was written".
   */
  async run<T>(call: (options: CallOptions) => Promise<T>): Promise<T> {
    try {
      return await this.within(call);
    } catch (error) {
      throw this.storeError(error);
    }
  }

  /** `run` without the error mapping, for callers that look at etcd's own error (a compacted read). */
  async within<T>(call: (options: CallOptions) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let granted = false;
    let queued: (() => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(granted ? 'deadline exceeded' : 'deadline exceeded waiting for a free call slot')), this.timeoutMs);
    });
    try {
      if (this.inFlight < MAX_CALLS_IN_FLIGHT) {
        this.inFlight++;
        granted = true;
      } else {
        await Promise.race([new Promise<void>((resolve) => {
          queued = () => { granted = true; resolve(); };
          this.waiting.push(queued);
        }), deadline]);
      }
      return await Promise.race([call(this.options()), deadline]);
    } finally {
      clearTimeout(timer);
      if (granted) this.release();
      else if (queued) this.waiting.splice(this.waiting.indexOf(queued), 1);
    }
  }

  storeError(error: unknown): StoreError {
    if (error instanceof StoreError) return error;
    const cause = error instanceof Error ? error.message : String(error);
    if (isCompactedError(error)) return new GoneError(`etcd: ${cause}; list again`);
    const seconds = this.timeoutMs % 1000 === 0 ? `${this.timeoutMs / 1000} s` : `${this.timeoutMs} ms`;
    return new UnavailableError(`etcd at ${this.endpoints.join(',')} did not answer within ${seconds} (no quorum or unreachable): ${cause}`);
  }

  /** Hands the slot to the next waiting call, or frees it. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }
}

/** etcd's ErrCompacted ("mvcc: required revision has been compacted"). */
export function isCompactedError(error: unknown): boolean {
  return error instanceof Error && /required revision has been compacted/.test(error.message);
}

/** etcd's ErrFutureRev: a read at a revision the cluster has not reached. */
export function isFutureRevisionError(error: unknown): boolean {
  return error instanceof Error && /required revision is a future revision/.test(error.message);
}
