import { describe, expect, it } from 'vitest';
import { livenessDue } from './livenessBudget.js';

describe('livenessDue', () => {
  it('writes nodes unwritten for a minute, the longest unwritten first, within the budget', () => {
    const now = 1_000_000;
    const linked = ['a', 'b', 'c', 'd'].map((node) => ({ node, lastSeen: now }));
    const persisted = new Map([['a', now - 70_000], ['b', now - 30_000], ['c', now - 200_000]]);
    expect(livenessDue(linked, persisted, 10)).toEqual(['d', 'c', 'a']);
    expect(livenessDue(linked, persisted, 2)).toEqual(['d', 'c']);
    expect(livenessDue(linked, persisted, 0)).toEqual([]);
  });
});
