/**
 * Reconnect back-off: exponential with jitter, so that a thousand edges that lost the cloud at
 * the same moment do not reconnect in lockstep. The cap is short (a few seconds) so that a
 * restored link converges within seconds; protecting cloudcore from a reconnect storm is the
 * job of its admission control, which refuses upgrades it cannot take with 503 + Retry-After,
 * and the edge honours that hint (see retryDelayMs).
 */
export interface BackoffPolicy {
  /** Delay after the first failure. */
  baseMs: number;
  /** Upper bound, however many failures. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 5_000 };

/**
 * Delay before the next attempt after `failures` consecutive failures (1 = the first):
 * nominal = min(maxMs, baseMs × 2^(failures−1)), then uniform in [nominal/2, nominal] (half
 * fixed, half random: never reconnect in a tight loop, still spread the herd). Counted exactly
 * as the mapper SDK's `backoffDelayMs` (device-mappers/sdk/backoff.ts) and the runtime's
 * restart back-off count: the SDK keeps its own copy because mappers must not import edgecore.
 */
export function backoffDelayMs(failures: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  // Cap the exponent so huge counts cannot overflow before the min().
  const exponent = Math.max(0, Math.min(failures, 31) - 1);
  const nominal = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const half = nominal / 2;
  return Math.round(half + random() * half);
}

/** Longest Retry-After the edge accepts from the cloud: a bad hint must not park an edge for hours. */
export const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Parses an HTTP Retry-After header given in delta-seconds (what cloudcore sends; fractions
 * allowed). Returns milliseconds, or null when absent or not a non-negative number.
 */
export function parseRetryAfterMs(header: string | string[] | undefined): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return null;
  return Math.min(MAX_RETRY_AFTER_MS, Math.round(Number(value) * 1000));
}

/**
 * Delay before the next attempt after `failures` consecutive failures: the back-off delay, but
 * never sooner than the cloud asked (its Retry-After already carries its own jitter, so it is
 * honoured as given).
 */
export function retryDelayMs(failures: number, retryAfterMs: number | null, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const backoff = backoffDelayMs(failures, policy, random);
  return retryAfterMs === null ? backoff : Math.max(backoff, retryAfterMs);
}
