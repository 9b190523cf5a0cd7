import { describe, expect, it } from 'vitest';
import { cappedAtNow, cappedTwin } from './edgeClock.js';

const NOW = Date.parse('2026-12-05T12:00:00.000Z');

describe('edge times capped at the cloud clock', () => {
  it('keeps past times, caps future ones and unparseable ones at now', () => {
    expect(cappedAtNow('2026-12-05T11:59:59.000Z', NOW)).toBe('2026-12-05T11:59:59.000Z');
    expect(cappedAtNow('2099-01-01T00:00:00.000Z', NOW)).toBe('2026-12-05T12:00:00.000Z');
    expect(cappedAtNow('zzzz', NOW)).toBe('2026-12-05T12:00:00.000Z');
  });

  it('caps each property time of a twin and returns the same object when nothing changes', () => {
    const twin = { reported: { a: 1, b: 2 }, version: 3, metadata: { a: { updatedAt: '2099-01-01T00:00:00.000Z' }, b: { updatedAt: '2026-01-01T00:00:00.000Z' } } };
    expect(cappedTwin(twin, NOW).metadata).toEqual({ a: { updatedAt: '2026-12-05T12:00:00.000Z' }, b: { updatedAt: '2026-01-01T00:00:00.000Z' } });
    const fine = { ...twin, metadata: { b: twin.metadata.b } };
    expect(cappedTwin(fine, NOW)).toBe(fine);
  });
});
