import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, MAX_RETRY_AFTER_MS, parseRetryAfterMs, reconnectDelayMs, retryDelayMs } from './backoff.js';

describe('reconnectDelayMs', () => {
  const opts = { baseMs: 100, maxMs: 10_000 };
  it('grows exponentially and stays within [ceiling/2, ceiling]', () => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const ceiling = Math.min(10_000, 100 * 2 ** attempt);
      expect(reconnectDelayMs(attempt, opts, () => 0)).toBe(ceiling / 2);
      expect(reconnectDelayMs(attempt, opts, () => 1)).toBe(ceiling);
    }
  });
  it('is capped at maxMs however many attempts failed', () => {
    expect(reconnectDelayMs(1000, opts, () => 1)).toBe(10_000);
  });
  it('spreads a herd: different random draws give different delays', () => {
    const delays = new Set(Array.from({ length: 50 }, () => reconnectDelayMs(5, opts)));
    expect(delays.size).toBeGreaterThan(10);
  });
  it('by default caps at a few seconds, with jitter, so a restored link converges quickly', () => {
    expect(DEFAULT_BACKOFF.maxMs).toBeLessThanOrEqual(5_000);
    for (let i = 0; i < 200; i++) {
      const d = reconnectDelayMs(50, DEFAULT_BACKOFF);
      expect(d).toBeGreaterThanOrEqual(DEFAULT_BACKOFF.maxMs / 2);
      expect(d).toBeLessThanOrEqual(DEFAULT_BACKOFF.maxMs);
    }
    const capped = new Set(Array.from({ length: 50 }, () => reconnectDelayMs(50, DEFAULT_BACKOFF)));
    expect(capped.size).toBeGreaterThan(10);
  });
});

describe('parseRetryAfterMs', () => {
  it('reads delta-seconds, fractions included', () => {
    expect(parseRetryAfterMs('2')).toBe(2000);
    expect(parseRetryAfterMs(['1.5'])).toBe(1500);
  });
  it('ignores what is absent or not a number', () => {
    expect(parseRetryAfterMs(undefined)).toBeNull();
    expect(parseRetryAfterMs('soon')).toBeNull();
    expect(parseRetryAfterMs('-1')).toBeNull();
  });
  it('bounds an absurd hint', () => {
    expect(parseRetryAfterMs('86400')).toBe(MAX_RETRY_AFTER_MS);
  });
});

describe('retryDelayMs', () => {
  const opts = { baseMs: 100, maxMs: 1_000 };
  it('waits at least as long as the cloud asked', () => {
    expect(retryDelayMs(0, 3_000, opts, () => 1)).toBe(3_000);
  });
  it('keeps the back-off when it is longer than the hint or there is none', () => {
    expect(retryDelayMs(10, 10, opts, () => 1)).toBe(1_000);
    expect(retryDelayMs(10, null, opts, () => 0)).toBe(500);
  });
});
