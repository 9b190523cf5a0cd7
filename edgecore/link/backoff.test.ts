import { describe, expect, it } from 'vitest';
import { reconnectDelayMs } from './backoff.js';

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
});
