/**
 * Slows down password guessing on the local status page: a client (by address) that sent
 * `maxFailures` wrong passwords within `windowMs` is refused, without its password being
 * checked, until the oldest of those failures is `windowMs` old. A right password clears its
 * record. Pure bookkeeping; statusServer.ts applies it.
 *
 * Why per address and sliding: a field engineer who mistypes a few times is never stopped,
 * while a script on the plant network gets at most `maxFailures` guesses per window. Memory is
 * bounded (`maxTracked` addresses, the least recently failed forgotten first), so a flood from
 * many addresses cannot grow it.
 */
export interface FailureThrottleOptions {
  maxFailures: number;
  windowMs: number;
  maxTracked?: number;
  now?: () => number;
}

export const DEFAULT_STATUS_AUTH_THROTTLE = { maxFailures: 10, windowMs: 60_000 } as const;

const DEFAULT_MAX_TRACKED = 4096;

export class FailureThrottle {
  /** Per key, the times of its recent failures, oldest first (at most maxFailures). */
  private readonly failures = new Map<string, number[]>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxTracked: number;
  private readonly now: () => number;

  constructor(opts: FailureThrottleOptions) {
    if (!Number.isInteger(opts.maxFailures) || opts.maxFailures < 1) throw new RangeError(`maxFailures must be a positive integer, got ${opts.maxFailures}`);
    if (!(opts.windowMs > 0)) throw new RangeError(`windowMs must be positive, got ${opts.windowMs}`);
    this.maxFailures = opts.maxFailures;
    this.windowMs = opts.windowMs;
    this.maxTracked = opts.maxTracked ?? DEFAULT_MAX_TRACKED;
    if (!Number.isInteger(this.maxTracked) || this.maxTracked < 1) throw new RangeError(`maxTracked must be a positive integer, got ${this.maxTracked}`);
    this.now = opts.now ?? Date.now;
  }

  /** Ms until `key` may try again; 0 when it may now. */
  blockedForMs(key: string): number {
    const times = this.recent(key);
    if (times.length < this.maxFailures) return 0;
    // Clamped: a clock that went back must not lock a client out for longer than one window.
    return Math.min(this.windowMs, Math.max(0, times[0]! + this.windowMs - this.now()));
  }

  failed(key: string): void {
    const times = this.recent(key);
    times.push(this.now());
    if (times.length > this.maxFailures) times.shift();
    // Re-inserted, so the Map's order is least recently failed first (what is evicted).
    this.failures.delete(key);
    this.failures.set(key, times);
    if (this.failures.size > this.maxTracked) this.failures.delete(this.failures.keys().next().value!);
  }

  succeeded(key: string): void {
    this.failures.delete(key);
  }

  /** Addresses with failures on record (for tests and the memory bound). */
  get tracked(): number {
    return this.failures.size;
  }

  /** The key's failures still inside the window (older ones dropped). */
  private recent(key: string): number[] {
    const times = this.failures.get(key);
    if (times === undefined) return [];
    const cutoff = this.now() - this.windowMs;
    while (times.length > 0 && times[0]! <= cutoff) times.shift();
    if (times.length === 0) this.failures.delete(key);
    return times;
  }
}
