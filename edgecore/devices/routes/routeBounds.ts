import type { RouteLimits } from '../../../protocol/index.js';

/**
 * Pure decisions of the route queue: what a new message costs the queue, and how the
 * forwarding pace is kept. The I/O (SQLite, MQTT, the link) lives in routeQueue.ts and
 * routeEngine.ts.
 */

export type Admission =
  | { accept: false; reason: 'oversized' }
  /** Accept, after dropping the `dropOldest` oldest queued messages (drop-oldest: the newest data is worth more). */
  | { accept: true; dropOldest: number };

/** The queued messages' sizes, oldest first, are only read when something must go. */
export function admit(depth: number, queuedBytes: number, size: number, limits: RouteLimits, oldestSizes: () => readonly number[]): Admission {
  if (size > limits.maxMessageBytes) return { accept: false, reason: 'oversized' };
  if (depth + 1 <= limits.maxQueuedMessages && queuedBytes + size <= limits.maxQueuedBytes) return { accept: true, dropOldest: 0 };
  let count = depth;
  let bytes = queuedBytes;
  let drop = 0;
  const sizes = oldestSizes();
  while ((count + 1 > limits.maxQueuedMessages || bytes + size > limits.maxQueuedBytes) && drop < sizes.length) {
    bytes -= sizes[drop]!;
    count--;
    drop++;
  }
  return { accept: true, dropOldest: drop };
}

/** A token bucket of `rate` tokens per second holding at most `rate` (one second of burst). */
export interface Bucket { tokens: number; at: number }

export function newBucket(rate: number, now: number): Bucket {
  return { tokens: rate, at: now };
}

/** Takes up to `wanted` tokens; returns how many were granted and the bucket after. */
export function takeTokens(bucket: Bucket, rate: number, now: number, wanted: number): { granted: number; bucket: Bucket } {
  const refilled = Math.min(rate, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * rate);
  const granted = Math.max(0, Math.min(wanted, Math.floor(refilled)));
  return { granted, bucket: { tokens: refilled - granted, at: now } };
}

/** Milliseconds until the bucket holds one whole token again. */
export function msUntilToken(bucket: Bucket, rate: number): number {
  return bucket.tokens >= 1 ? 0 : Math.ceil(((1 - bucket.tokens) / rate) * 1000);
}
