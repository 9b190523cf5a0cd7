/**
 * Reconnect back-off: exponential with "full jitter" (AWS architecture blog), so that a
 * thousand edges that lost the cloud at the same moment do not reconnect in lockstep.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

/** Delay before reconnect attempt `attempt` (0-based): uniform in [ceiling/2, ceiling]. */
export function reconnectDelayMs(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  // Half fixed, half random: never reconnect in a tight loop, still spread the herd.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
