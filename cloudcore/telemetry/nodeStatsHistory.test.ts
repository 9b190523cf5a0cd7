import { describe, expect, it } from 'vitest';
import { NodeStatsHistory, STATS_WINDOW_MS } from './nodeStatsHistory.js';

const sample = (cpuPercent: number, memoryUsedBytes = 1_000_000, diskUsedBytes = 5_000_000) => ({
  cpuPercent, memoryUsedBytes, memoryTotalBytes: 8_000_000_000, diskUsedBytes, diskTotalBytes: 100_000_000_000,
});

describe('NodeStatsHistory', () => {
  it('answers an empty series for a node that never reported', () => {
    expect(new NodeStatsHistory().series('edge-1', 0, 0)).toEqual({ points: [], memoryTotalBytes: null, diskTotalBytes: null });
  });

  it('keeps samples oldest first with the newest totals, and filters by since', () => {
    const h = new NodeStatsHistory();
    h.record('edge-1', 1_000, sample(10));
    h.record('edge-1', 2_000, sample(20.25, 2_000_000));
    h.record('edge-2', 2_000, sample(99));
    const all = h.series('edge-1', 0, 3_000);
    expect(all.points).toEqual([
      { t: 1_000, cpuPercent: 10, memoryUsedBytes: 1_000_000, diskUsedBytes: 5_000_000 },
      { t: 2_000, cpuPercent: 20.3, memoryUsedBytes: 2_000_000, diskUsedBytes: 5_000_000 },
    ]);
    expect(all.memoryTotalBytes).toBe(8_000_000_000);
    expect(h.series('edge-1', 1_000, 3_000).points.map((p) => p.t)).toEqual([2_000]);
  });

  it('drops samples older than the window', () => {
    const h = new NodeStatsHistory();
    h.record('edge-1', 0, sample(1));
    h.record('edge-1', STATS_WINDOW_MS / 2, sample(2));
    expect(h.series('edge-1', 0, STATS_WINDOW_MS + 1).points.map((p) => p.cpuPercent)).toEqual([2]);
  });

  it('is bounded per node, keeping the newest, across growth and wrap-around', () => {
    const h = new NodeStatsHistory({ maxSamplesPerNode: 50 });
    for (let i = 1; i <= 130; i++) h.record('edge-1', i, sample(i % 100));
    const points = h.series('edge-1', 0, 131).points;
    expect(points).toHaveLength(50);
    expect(points.map((p) => p.t)).toEqual(Array.from({ length: 50 }, (_, i) => 81 + i));
    expect(points.at(-1)?.cpuPercent).toBe(30);
  });

  it('forgets a deleted node', () => {
    const h = new NodeStatsHistory();
    h.record('edge-1', 0, sample(1));
    h.forget('edge-1');
    expect(h.series('edge-1', -1, 0).points).toEqual([]);
  });
});
