/** Retry delays for device connections and the MQTT link. */
export interface BackoffPolicy {
  /** Delay after the first failure. */
  baseMs: number;
  /** Upper bound, however many failures. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };

/**
 * Delay before the next attempt after `failures` consecutive failures (1 = the first).
 * Exponential and capped, with "equal jitter": half of the delay is fixed, half random, so
 * many devices that failed together (a switch rebooting) spread their retries out, while a
 * retry never comes sooner than half the nominal delay. edgecore's link back-off
 * (edgecore/link/backoff.ts) counts and computes the same; the SDK keeps its own copy so a
 * mapper depends on nothing of edgecore.
 */
export function backoffDelayMs(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(failures, 31) - 1);
  const nominal = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const half = nominal / 2;
  return Math.round(half + random() * half);
}
