import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetryLater } from './retryLater.js';

describe('RetryLater', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it('runs every waiting key once, together, after the delay; a key failing again waits another delay', () => {
    const ran: string[] = [];
    let failing = true;
    const retry: RetryLater = new RetryLater(1000, (key) => {
      ran.push(key);
      if (failing && key === 'a') retry.add(key);
    });
    retry.add('a');
    vi.advanceTimersByTime(500);
    retry.add('b');
    retry.add('a');
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(499);
    expect(ran).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ran).toEqual(['a', 'b']);
    failing = false;
    vi.advanceTimersByTime(1000);
    expect(ran).toEqual(['a', 'b', 'a']);
    vi.advanceTimersByTime(5000);
    expect(ran).toEqual(['a', 'b', 'a']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('after stop() nothing waits and nothing runs', () => {
    const ran: string[] = [];
    const retry = new RetryLater(1000, (key) => ran.push(key));
    retry.add('a');
    retry.stop();
    retry.add('b');
    vi.advanceTimersByTime(5000);
    expect(ran).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
