import { describe, expect, it } from 'vitest';
import { FailureThrottle } from './failureThrottle.js';

function clocked(opts: { maxFailures: number; windowMs: number; maxTracked?: number }) {
  let now = 1_000_000;
  const throttle = new FailureThrottle({ ...opts, now: () => now });
  return { throttle, advance: (ms: number) => { now += ms; } };
}

describe('FailureThrottle', () => {
  it('lets a client fail up to the limit, then blocks it until its oldest failure leaves the window', () => {
    const { throttle, advance } = clocked({ maxFailures: 3, windowMs: 60_000 });
    throttle.failed('a');
    advance(10_000);
    throttle.failed('a');
    expect(throttle.blockedForMs('a')).toBe(0);
    throttle.failed('a');
    expect(throttle.blockedForMs('a')).toBe(50_000); // the first failure was 10 s ago
    expect(throttle.blockedForMs('b')).toBe(0); // other clients are not affected
    advance(50_000);
    expect(throttle.blockedForMs('a')).toBe(0);
    // Sliding: one more failure now blocks again until the second one (at +10 s) is a window old.
    throttle.failed('a');
    expect(throttle.blockedForMs('a')).toBe(10_000);
  });

  it('a right password clears the record', () => {
    const { throttle } = clocked({ maxFailures: 2, windowMs: 60_000 });
    throttle.failed('a');
    throttle.succeeded('a');
    throttle.failed('a');
    expect(throttle.blockedForMs('a')).toBe(0);
    expect(throttle.tracked).toBe(1);
  });

  it('forgets failures older than the window, and the clients they belonged to', () => {
    const { throttle, advance } = clocked({ maxFailures: 2, windowMs: 1_000 });
    throttle.failed('a');
    advance(1_000);
    throttle.failed('a');
    expect(throttle.blockedForMs('a')).toBe(0);
    advance(1_000);
    expect(throttle.blockedForMs('a')).toBe(0);
    expect(throttle.tracked).toBe(0);
  });

  it('never blocks for more than one window when the clock went back', () => {
    const { throttle, advance } = clocked({ maxFailures: 1, windowMs: 60_000 });
    throttle.failed('a');
    advance(-3_600_000);
    expect(throttle.blockedForMs('a')).toBe(60_000);
  });

  it('tracks a bounded number of clients, forgetting the least recently failed first', () => {
    const { throttle } = clocked({ maxFailures: 1, windowMs: 60_000, maxTracked: 3 });
    for (const key of ['a', 'b', 'c']) throttle.failed(key);
    throttle.failed('a'); // a failed again: now the most recent
    throttle.failed('d');
    expect(throttle.tracked).toBe(3);
    expect(throttle.blockedForMs('b')).toBe(0); // forgotten
    for (const key of ['a', 'c', 'd']) expect(throttle.blockedForMs(key), key).toBeGreaterThan(0);
  });

  it('refuses nonsense limits', () => {
    expect(() => new FailureThrottle({ maxFailures: 0, windowMs: 1 })).toThrow(/maxFailures/);
    expect(() => new FailureThrottle({ maxFailures: 1, windowMs: 0 })).toThrow(/windowMs/);
    expect(() => new FailureThrottle({ maxFailures: 1, windowMs: 1, maxTracked: 0 })).toThrow(/maxTracked/);
  });
});
