import type { RouteLimits } from '../../../protocol/index.js';
import { backoffDelayMs } from '../../link/backoff.js';
import { msUntilToken, newBucket, takeTokens, type Bucket } from './routeBounds.js';
import type { QueuedMessage, RouteQueue } from './routeQueue.js';

/**
 * Where one route's messages go. `deliver` resolves with the highest seq the destination
 * confirmed (the batch's messages are in seq order; a prefix may be confirmed before a failure)
 * and rejects when none could be; `ready` says whether trying makes sense now.
 */
export interface RouteDestinationPort {
  readonly kind: 'cloud' | 'mqtt';
  ready(): boolean;
  deliver(batch: readonly QueuedMessage[]): Promise<number>;
  /** Why the destination is not reachable now (shown as the route's lastError). */
  problem(): string | null;
  close(): Promise<void>;
}

const MAX_BATCH = 100;
const RETRY_POLICY = { baseMs: 500, maxMs: 30_000 };

/**
 * Moves one route's queue to its destination: oldest first, one batch in flight (so order per
 * topic holds across failures), at most `maxMessagesPerSecond`, deleting only what the
 * destination confirmed. After a failure it waits with back-off; `kick` wakes it early
 * (a new message, the destination back).
 */
export class RoutePump {
  private bucket: Bucket;
  private busy = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  lastError: string | null = null;
  lastForwardedAt: string | null = null;

  constructor(
    private readonly route: string,
    private readonly limits: RouteLimits,
    private readonly queue: RouteQueue,
    readonly destination: RouteDestinationPort,
    private readonly onError: (route: string, error: string) => void,
  ) {
    this.bucket = newBucket(limits.maxMessagesPerSecond, Date.now());
  }

  kick(): void {
    if (this.closed || this.busy || this.timer !== undefined) return;
    this.busy = true;
    void this.run().finally(() => { this.busy = false; });
  }

  /** The destination is back: try now, whatever back-off was running. */
  wake(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.kick();
  }

  private later(ms: number): void {
    if (this.closed || this.timer !== undefined) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.kick(); }, ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      if (this.queue.size(this.route).depth === 0) return;
      if (!this.destination.ready()) {
        // The destination calls wake() when it is back; the timer only guards against a missed one.
        return this.later(5_000);
      }
      const rate = this.limits.maxMessagesPerSecond;
      const taken = takeTokens(this.bucket, rate, Date.now(), MAX_BATCH);
      this.bucket = taken.bucket;
      if (taken.granted === 0) return this.later(Math.max(1, msUntilToken(this.bucket, rate)));
      const batch = this.queue.head(this.route, taken.granted);
      // Tokens for messages that were not there go back (a short queue must not slow the next burst).
      this.bucket = { ...this.bucket, tokens: this.bucket.tokens + (taken.granted - batch.length) };
      if (batch.length === 0) return;
      try {
        const confirmed = await this.destination.deliver(batch);
        if (this.closed) return;
        this.queue.confirm(this.route, confirmed);
        this.lastForwardedAt = new Date().toISOString();
        this.failures = 0;
        this.lastError = null;
        if (confirmed < batch[batch.length - 1]!.seq) throw new Error('the destination confirmed only part of a batch');
      } catch (err) {
        if (this.closed) return;
        this.failures++;
        const message = (err as Error).message;
        if (message !== this.lastError) this.onError(this.route, message);
        this.lastError = message;
        return this.later(backoffDelayMs(this.failures, RETRY_POLICY));
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.destination.close();
  }
}
