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
  /**
   * Batches handed over before the first is confirmed. More than one only where the destination
   * keeps them in order and confirms cumulatively (the cloud link), and rejects every batch
   * still waiting when one fails.
   */
  readonly maxInFlight: number;
  ready(): boolean;
  deliver(batch: readonly QueuedMessage[]): Promise<number>;
  /** Why the destination is not reachable now (shown as the route's lastError). */
  problem(): string | null;
  close(): Promise<void>;
}

const MAX_BATCH = 100;
const RETRY_POLICY = { baseMs: 500, maxMs: 30_000 };

/**
 * Moves one route's queue to its destination: oldest first, up to the destination's
 * `maxInFlight` batches at once (one round trip per batch capped the cloud route at a few
 * hundred messages a second), at most `maxMessagesPerSecond`, deleting only what the
 * destination confirmed. A failure starts the next try from the oldest unconfirmed message, so
 * order per topic holds across failures. After a failure it waits with back-off; `kick` wakes
 * it early (a new message, the destination back).
 */
export class RoutePump {
  private bucket: Bucket;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private inFlight = 0;
  /** The last seq handed over and not yet confirmed or failed: the next batch starts after it. */
  private sentThrough = 0;
  /** Bumped by a failure: batches of an earlier try can still confirm, but no longer count as in flight. */
  private attempt = 0;
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
    if (this.closed || this.timer !== undefined) return;
    this.fill();
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

  /** Hands batches over until the window is full, the queue is empty or the rate says wait. */
  private fill(): void {
    while (!this.closed && this.inFlight < this.destination.maxInFlight) {
      if (this.queue.size(this.route).depth === 0) return;
      if (!this.destination.ready()) {
        // The destination calls wake() when it is back; the timer only guards against a missed one.
        if (this.inFlight === 0) this.later(5_000);
        return;
      }
      const rate = this.limits.maxMessagesPerSecond;
      const taken = takeTokens(this.bucket, rate, Date.now(), MAX_BATCH);
      this.bucket = taken.bucket;
      if (taken.granted === 0) return this.later(Math.max(1, msUntilToken(this.bucket, rate)));
      const batch = this.queue.head(this.route, taken.granted, this.sentThrough);
      // Tokens for messages that were not there go back (a short queue must not slow the next burst).
      this.bucket = { ...this.bucket, tokens: this.bucket.tokens + (taken.granted - batch.length) };
      if (batch.length === 0) return;
      const attempt = this.attempt;
      this.sentThrough = batch[batch.length - 1]!.seq;
      this.inFlight++;
      this.destination.deliver(batch).then(
        (confirmed) => this.delivered(attempt, batch, confirmed),
        (err: unknown) => this.failed(attempt, err instanceof Error ? err.message : String(err)));
    }
  }

  private delivered(attempt: number, batch: readonly QueuedMessage[], confirmed: number): void {
    if (this.closed) return;
    // Cumulative: whatever the destination confirmed is stored there, whichever try sent it.
    this.queue.confirm(this.route, confirmed);
    this.lastForwardedAt = new Date().toISOString();
    if (attempt !== this.attempt) return;
    this.inFlight--;
    if (confirmed < batch[batch.length - 1]!.seq) return this.failed(attempt, 'the destination confirmed only part of a batch');
    this.failures = 0;
    this.lastError = null;
    this.kick();
  }

  private failed(attempt: number, message: string): void {
    if (this.closed || attempt !== this.attempt) return;
    // Everything unconfirmed goes again, from the oldest: the destination keeps each seq once.
    this.attempt++;
    this.inFlight = 0;
    this.sentThrough = 0;
    this.failures++;
    if (message !== this.lastError) this.onError(this.route, message);
    this.lastError = message;
    this.later(backoffDelayMs(this.failures, RETRY_POLICY));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.destination.close();
  }
}
