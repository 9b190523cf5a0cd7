import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ConnectionLimits } from './connectionLimits.js';
import { sourceAddress } from './sourceAddress.js';
import { StreamLimitError, StreamSlots } from './streamSlots.js';
import { ThrottledWarnings } from './throttledWarnings.js';
import { TokenBuckets } from './tokenBuckets.js';

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) { super(); }
  destroy(): this { this.destroyed = true; return this; }
}

function recordingLog() {
  const warnings: { fields: Record<string, unknown>; msg: string }[] = [];
  return { warnings, log: { warn: (fields: Record<string, unknown>, msg: string) => { warnings.push({ fields, msg }); } } };
}

describe('ThrottledWarnings', () => {
  it('warns once per key per interval and reports how many happened since', () => {
    let now = 0;
    const w = new ThrottledWarnings(1000, () => now);
    expect(w.occur('a')).toBe(1);
    expect(w.occur('a')).toBeUndefined();
    expect(w.occur('a')).toBeUndefined();
    expect(w.occur('b')).toBe(1);
    now = 1000;
    expect(w.occur('a')).toBe(3);
    expect(w.occur('a')).toBeUndefined();
  });
});

describe('sourceAddress', () => {
  it('counts an IPv4 peer on a dual-stack socket under its IPv4 address', () => {
    expect(sourceAddress('::ffff:127.0.0.2')).toBe('127.0.0.2');
    expect(sourceAddress('::1')).toBe('::1');
    expect(sourceAddress(undefined)).toBe('unknown');
  });
});

describe('ConnectionLimits', () => {
  it('destroys connections over the per-address cap, warns once per address per interval, and frees a slot on close', () => {
    const { warnings, log } = recordingLog();
    const limits = new ConnectionLimits(2, log, { now: () => 0 });
    const a = [1, 2, 3, 4].map(() => new FakeSocket('::ffff:10.0.0.1'));
    expect(a.map((s) => limits.onConnection(s))).toEqual([true, true, false, false]);
    expect(a.map((s) => s.destroyed)).toEqual([false, false, true, true]);
    expect(limits.refused).toBe(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fields).toMatchObject({ remote: '10.0.0.1', limit: 2 });
    // Another address has its own count.
    expect(limits.onConnection(new FakeSocket('10.0.0.2'))).toBe(true);
    a[0]!.emit('close');
    expect(limits.openFrom('10.0.0.1')).toBe(1);
    expect(limits.onConnection(new FakeSocket('10.0.0.1'))).toBe(true);
  });
});

describe('StreamSlots', () => {
  it('refuses a stream over the per-address cap with 429 and frees the slot when the response closes', () => {
    const slots = new StreamSlots(1);
    const first = new EventEmitter();
    slots.take('10.0.0.1', first);
    expect(() => slots.take('10.0.0.1', new EventEmitter())).toThrow(StreamLimitError);
    expect(() => slots.take('10.0.0.1', new EventEmitter())).toThrow(/limit maxStreamsPerAddress = 1/);
    slots.take('10.0.0.2', new EventEmitter());
    first.emit('close');
    expect(slots.openFrom('10.0.0.1')).toBe(0);
    const release = slots.take('10.0.0.1', new EventEmitter());
    release();
    release(); // twice is once
    expect(slots.openFrom('10.0.0.1')).toBe(0);
    expect(slots.refused).toBe(2);
  });
});

describe('TokenBuckets', () => {
  it('admits a burst, then the refill rate, per key', () => {
    let now = 0;
    const buckets = new TokenBuckets(10, 5, () => now);
    const admitted = (key: string, n: number) => Array.from({ length: n }, () => buckets.take(key)).filter(Boolean).length;
    expect(admitted('a', 100)).toBe(5);
    expect(admitted('b', 3)).toBe(3); // its own bucket
    now += 1000;
    expect(admitted('a', 100)).toBe(5); // refilled to the burst, not to rate × time
    now += 300;
    expect(admitted('a', 100)).toBe(3);
  });
});
