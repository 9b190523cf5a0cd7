import { describe, expect, it } from 'vitest';
import { RouteLimitsSchema } from '../../../protocol/index.js';
import { admit, msUntilToken, newBucket, takeTokens } from './routeBounds.js';

const limits = RouteLimitsSchema.parse({ maxQueuedMessages: 3, maxQueuedBytes: 1024, maxMessageBytes: 100 });

describe('route queue admission', () => {
  it('accepts while under both bounds', () => {
    expect(admit(0, 0, 10, limits, () => [])).toEqual({ accept: true, dropOldest: 0 });
    expect(admit(2, 20, 10, limits, () => [10, 10])).toEqual({ accept: true, dropOldest: 0 });
  });
  it('refuses a message over maxMessageBytes, whatever the queue holds', () => {
    expect(admit(0, 0, 101, limits, () => [])).toEqual({ accept: false, reason: 'oversized' });
  });
  it('drops the oldest when the count bound is hit', () => {
    expect(admit(3, 30, 10, limits, () => [10, 10, 10])).toEqual({ accept: true, dropOldest: 1 });
  });
  it('drops as many oldest as the byte bound needs', () => {
    const byBytes = RouteLimitsSchema.parse({ maxQueuedMessages: 100, maxQueuedBytes: 1024, maxMessageBytes: 1024 });
    expect(admit(3, 900, 300, byBytes, () => [100, 100, 700])).toEqual({ accept: true, dropOldest: 2 });
    expect(admit(3, 900, 1000, byBytes, () => [100, 100, 700])).toEqual({ accept: true, dropOldest: 3 });
  });
});

describe('route pace (token bucket)', () => {
  it('grants a second of burst, then refills at the rate', () => {
    let bucket = newBucket(10, 0);
    const first = takeTokens(bucket, 10, 0, 50);
    expect(first.granted).toBe(10);
    bucket = first.bucket;
    expect(takeTokens(bucket, 10, 0, 5).granted).toBe(0);
    expect(msUntilToken(bucket, 10)).toBe(100);
    expect(takeTokens(bucket, 10, 500, 50).granted).toBe(5);
    expect(takeTokens(bucket, 10, 10_000, 50).granted).toBe(10);
  });
});
