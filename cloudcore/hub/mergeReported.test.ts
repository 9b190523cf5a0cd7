import { describe, expect, it } from 'vitest';
import type { ReportedTwin } from '../../protocol/index.js';
import { mergeReported } from './mergeReported.js';

const T1 = '2026-01-01T10:00:00.000Z';
const T2 = '2026-01-01T11:00:00.000Z';
const T3 = '2026-01-01T12:00:00.000Z';
const twin = (version: number, values: Record<string, [number | string | boolean, string]>): ReportedTwin => ({
  version,
  reported: Object.fromEntries(Object.entries(values).map(([k, [v]]) => [k, v])),
  metadata: Object.fromEntries(Object.entries(values).map(([k, [, at]]) => [k, { updatedAt: at }])),
});

describe('mergeReported', () => {
  it('takes the first report as it is', () => {
    const first = twin(3, { temperature: [20, T1] });
    expect(mergeReported(undefined, first)).toEqual(first);
  });

  it('an edge ahead of the cloud replaces the whole section, deletions included, and its version is taken', () => {
    const current = twin(4, { temperature: [20, T1], mode: ['eco', T1] });
    const incoming = twin(7, { temperature: [21, T2] });
    expect(mergeReported(current, incoming)).toEqual(incoming);
  });

  it('a resend of what the cloud holds changes nothing, the version included', () => {
    const current = twin(5, { temperature: [20, T1] });
    expect(mergeReported(current, structuredClone(current))).toEqual(current);
  });

  it('an edge that started its count over (wiped database): a newer value wins and the version goes up by one', () => {
    const current = twin(5, { temperature: [20, T1], mode: ['eco', T1] });
    const merged = mergeReported(current, twin(1, { temperature: [23.5, T2] }));
    expect(merged).toEqual(twin(6, { temperature: [23.5, T2], mode: ['eco', T1] }));
  });

  it('an edge at the same count as the cloud but with other values is not a resend: the version still moves', () => {
    const current = twin(5, { temperature: [20, T1] });
    expect(mergeReported(current, twin(5, { temperature: [22, T2] }))).toEqual(twin(6, { temperature: [22, T2] }));
  });

  it('never goes backwards and keeps moving while the edge count stays behind', () => {
    let cloud = twin(5, { temperature: [20, T1] });
    cloud = mergeReported(cloud, twin(1, { temperature: [21, T2] }));
    cloud = mergeReported(cloud, twin(2, { temperature: [22, T3] }));
    expect(cloud).toEqual(twin(7, { temperature: [22, T3] }));
    // The edge's count overtakes ours: its version is taken (more than ours + 1 is fine).
    expect(mergeReported(cloud, twin(9, { temperature: [23, T3] })).version).toBe(9);
  });

  it('an edge behind the cloud with an older value loses that property and moves nothing', () => {
    const current = twin(5, { temperature: [20, T2] });
    expect(mergeReported(current, twin(1, { temperature: [19, T1] }))).toEqual(current);
  });

  it('the same value under a newer time refreshes its time but is no change: the version stays', () => {
    const current = twin(5, { temperature: [20, T1] });
    expect(mergeReported(current, twin(1, { temperature: [20, T2] }))).toEqual(twin(5, { temperature: [20, T2] }));
  });
});
