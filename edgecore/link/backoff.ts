/**
 * Reconnect back-off: exponential with jitter, so that a thousand edges that lost the cloud at
 * the same moment do not reconnect in lockstep. The cap is short (a few seconds) so that a
 * restored link converges within seconds; protecting cloudcore from a reconnect storm is the
 * job of its admission control, which refuses upgrades it cannot take with 503 + Retry-After,
 * and the edge honours that hint (see retryDelayMs).
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 5_000 };

/** Delay before reconnect attempt `attempt` (0-based): uniform in [ceiling/2, ceiling]. */
export function reconnectDelayMs(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  // Half fixed, half random: never reconnect in a tight loop, still spread the herd.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
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
 * Delay before the next attempt: the back-off delay, but never sooner than the cloud asked
 * (its Retry-After already carries its own jitter, so it is honoured as given).
 */
export function retryDelayMs(attempt: number, retryAfterMs: number | null, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const backoff = reconnectDelayMs(attempt, opts, random);
  return retryAfterMs === null ? backoff : Math.max(backoff, retryAfterMs);
}
