import { describe, expect, it } from 'vitest';
import { parseRange } from './range.js';

describe('parseRange (one byte range of a download)', () => {
  it('answers the whole file without a Range header', () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: 'whole' });
  });
  it('reads start-end, start- and the -suffix form, clamping the end to the file', () => {
    expect(parseRange('bytes=10-19', 100)).toEqual({ kind: 'part', start: 10, end: 19 });
    expect(parseRange('bytes=10-', 100)).toEqual({ kind: 'part', start: 10, end: 99 });
    expect(parseRange('bytes=90-500', 100)).toEqual({ kind: 'part', start: 90, end: 99 });
    expect(parseRange('bytes=-30', 100)).toEqual({ kind: 'part', start: 70, end: 99 });
    expect(parseRange('bytes=-300', 100)).toEqual({ kind: 'part', start: 0, end: 99 });
  });
  it('refuses, with the reason, a start past the end, a reversed range, several ranges and other units', () => {
    expect(parseRange('bytes=100-', 100)).toMatchObject({ kind: 'refused', reason: expect.stringContaining('past the end') });
    expect(parseRange('bytes=20-10', 100)).toMatchObject({ kind: 'refused', reason: expect.stringContaining('before it starts') });
    expect(parseRange('bytes=0-1,5-6', 100)).toMatchObject({ kind: 'refused', reason: 'one byte range per request' });
    expect(parseRange('items=0-1', 100)).toMatchObject({ kind: 'refused' });
    expect(parseRange('bytes=-', 100)).toMatchObject({ kind: 'refused' });
    expect(parseRange('bytes=-0', 100)).toMatchObject({ kind: 'refused' });
    expect(parseRange('bytes=99999999999999999999-', 100)).toMatchObject({ kind: 'refused' });
  });
});
