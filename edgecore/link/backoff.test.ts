import { describe, expect, it } from 'vitest';
import { backoffDelayMs as mapperBackoffDelayMs } from '../../device-mappers/sdk/backoff.js';
import { backoffDelayMs, DEFAULT_BACKOFF, MAX_RETRY_AFTER_MS, parseRetryAfterMs, retryDelayMs } from './backoff.js';

describe('backoffDelayMs', () => {
  const policy = { baseMs: 100, maxMs: 10_000 };
  it('counts consecutive failures from 1: the first waits baseMs, each next one twice as long, within [nominal/2, nominal]', () => {
    for (let failures = 1; failures < 9; failures++) {
      const nominal = Math.min(10_000, 100 * 2 ** (failures - 1));
      expect(backoffDelayMs(failures, policy, () => 0)).toBe(nominal / 2);
      expect(backoffDelayMs(failures, policy, () => 1)).toBe(nominal);
    }
    expect(backoffDelayMs(0, policy, () => 1)).toBe(100); // no failure yet: as after the first
  });
  it('counts as the mapper SDK counts: the same failures, policy and draw give the same delay', () => {
    for (const failures of [0, 1, 2, 3, 7, 31, 1000]) {
      for (const draw of [0, 0.37, 1]) {
        expect(backoffDelayMs(failures, policy, () => draw)).toBe(mapperBackoffDelayMs(failures, policy, () => draw));
      }
    }
  });
  it('is capped at maxMs however many attempts failed', () => {
    expect(backoffDelayMs(1000, policy, () => 1)).toBe(10_000);
    expect(backoffDelayMs(Number.MAX_SAFE_INTEGER, policy, () => 1)).toBe(10_000);
  });
  it('spreads a herd: different random draws give different delays', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelayMs(6, policy)));
    expect(delays.size).toBeGreaterThan(10);
  });
  it('by default caps at a few seconds, with jitter, so a restored link converges quickly', () => {
    expect(DEFAULT_BACKOFF.maxMs).toBeLessThanOrEqual(5_000);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(50, DEFAULT_BACKOFF);
      expect(d).toBeGreaterThanOrEqual(DEFAULT_BACKOFF.maxMs / 2);
      expect(d).toBeLessThanOrEqual(DEFAULT_BACKOFF.maxMs);
    }
    const capped = new Set(Array.from({ length: 50 }, () => backoffDelayMs(50, DEFAULT_BACKOFF)));
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
    expect(retryDelayMs(1, 3_000, opts, () => 1)).toBe(3_000);
  });
  it('keeps the back-off when it is longer than the hint or there is none', () => {
    expect(retryDelayMs(10, 10, opts, () => 1)).toBe(1_000);
    expect(retryDelayMs(10, null, opts, () => 0)).toBe(500);
  });
});
