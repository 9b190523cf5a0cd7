import { describe, expect, it } from 'vitest';
import { nodeRankHash, resolveCount, resolveMaxUnavailable, resolveStrategy, resolveWaves, rolloutOrder, thresholdExceeded } from './rolloutStrategy.js';

describe('resolveStrategy', () => {
  it('fills the defaults', () => {
    expect(resolveStrategy(undefined)).toEqual({
      type: 'rolling', maxUnavailable: '25%', waves: [{ percent: 100 }], minReadySeconds: 0, failureThreshold: 0, autoRollback: false, offlineWindowSeconds: 300,
    });
    expect(resolveStrategy({ type: 'waves', waves: [{ percent: 10 }, { percent: 100 }] }).maxUnavailable).toBeUndefined();
  });
});

describe('counts', () => {
  it('rounds percents up, at least one node for maxUnavailable', () => {
    expect(resolveCount('10%', 15)).toBe(2);
    expect(resolveCount('10%', 10)).toBe(1);
    expect(resolveMaxUnavailable(resolveStrategy({ maxUnavailable: '1%' }), 10)).toBe(1);
    expect(resolveMaxUnavailable(resolveStrategy({ type: 'waves', waves: [{ percent: 100 }] }), 40)).toBe(40);
  });
  it('trips only when failures exceed the threshold', () => {
    expect(thresholdExceeded(0, 0, 5)).toBe(false);
    expect(thresholdExceeded(0, 1, 5)).toBe(true);
    expect(thresholdExceeded(2, 2, 5)).toBe(false);
    expect(thresholdExceeded('5%', 1, 20)).toBe(false);
    expect(thresholdExceeded('5%', 2, 20)).toBe(true);
    expect(thresholdExceeded('5%', 1, 1)).toBe(true);
  });
});

describe('resolveWaves', () => {
  it('gives cumulative, non-decreasing targets that end at the fleet', () => {
    const s = resolveStrategy({ type: 'waves', waves: [{ percent: 1 }, { count: 5, approval: true, minReadySeconds: 9 }, { percent: 3 }, { percent: 100 }], minReadySeconds: 4, failureThreshold: '5%' });
    expect(resolveWaves(s, 500).map((w) => w.target)).toEqual([5, 5, 15, 500]);
    expect(resolveWaves(s, 3).map((w) => w.target)).toEqual([1, 3, 3, 3]);
    expect(resolveWaves(s, 0).map((w) => w.target)).toEqual([0, 0, 0, 0]);
    expect(resolveWaves(s, 500)[1]).toEqual({ target: 5, approval: true, minReadySeconds: 9, failureThreshold: '5%' });
  });
});

describe('rolloutOrder', () => {
  it('is a stable hash order that a new node changes by one position', () => {
    const names = Array.from({ length: 50 }, (_, i) => `node-${i}`);
    const order = rolloutOrder(names);
    expect(rolloutOrder([...names].reverse())).toEqual(order);
    expect(order).not.toEqual(names);
    const withNew = rolloutOrder([...names, 'node-new']);
    expect(withNew.filter((n) => n !== 'node-new')).toEqual(order);
    expect(nodeRankHash('a')).toBe(nodeRankHash('a'));
  });
});
