/**
 * A token bucket per key (a node): `ratePerSecond` tokens refill continuously up to `burst`; each
 * admitted item takes one. Pure (the clock is passed in), so a flood's outcome is exact in tests.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly ratePerSecond: number, private readonly burst: number, private readonly now: () => number = Date.now) {}

  /** True (and one token spent) when `key` may have one more item now. */
  take(key: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  forget(key: string): void {
    this.buckets.delete(key);
  }
}
