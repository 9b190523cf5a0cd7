import { describe, expect, it } from 'vitest';
import { allRunning, coldStartLogTimes, EdgeStatusSchema, parseLogLines, reportedPids, runningCount, runningPid, updateLogTimes } from './edgeStatus.js';

const status = EdgeStatusSchema.parse({
  node: 'n1',
  link: { state: 'connected', downSince: null },
  sync: { epoch: 'e', lastRevision: 3 },
  workloads: [
    { name: 'a', generation: 2, runtime: 'process', status: { state: 'Running', pid: 101, generation: 2, restarts: 0 } },
    { name: 'b', generation: 1, runtime: 'process', status: { state: 'Pending', pid: null, generation: 1, restarts: 0 } },
    { name: 'c', generation: 1, runtime: 'process', status: null },
    { name: 'd', generation: 1, runtime: 'process', status: { state: 'Running', pid: 104, generation: 1, restarts: 0 } },
  ],
});

describe('edge status conditions', () => {
  it('finds the running pid, optionally of one generation', () => {
    expect(runningPid(status, 'a')).toBe(101);
    expect(runningPid(status, 'a', 2)).toBe(101);
    expect(runningPid(status, 'a', 3)).toBeNull();
    expect(runningPid(status, 'b')).toBeNull();
    expect(runningPid(status, 'c')).toBeNull();
    expect(runningPid(status, 'missing')).toBeNull();
  });

  it('counts a workload as running only with a pid that is not stale', () => {
    expect(allRunning(status, ['a', 'd'])).toBe(true);
    expect(allRunning(status, ['a', 'b'])).toBe(false);
    expect(allRunning(status, ['a', 'd'], new Set([104]))).toBe(false);
    expect(runningCount(status, ['a', 'b', 'c', 'd'])).toBe(2);
    expect(reportedPids(status)).toEqual([101, 104]);
  });
});

describe('edge log times', () => {
  const text = [
    '{"level":30,"time":1000,"msg":"edgecore ready"}',
    'not json',
    '{"level":30,"time":900,"workload":"a","msg":"stopped workload left by a previous edgecore","pid":5}',
    '{"level":30,"time":950,"workload":"a","state":"Running","pid":7,"msg":"workload state"}',
    '{"level":30,"time":960,"workload":"b","state":"Running","pid":8,"msg":"workload state"}',
    '{"level":30,"time":2000,"workload":"a","state":"Pending","msg":"workload state"}',
    '{"level":30,"time":2005,"workload":"a","pid":9,"msg":"workload started"}',
    '{"level":30,"time":2005,"workload":"a","state":"Running","pid":9,"msg":"workload state"}',
    '{"level":30,"time":2',
  ].join('\n');
  const lines = parseLogLines(text);

  it('skips lines that are not whole JSON objects', () => {
    expect(lines).toHaveLength(7);
  });

  it('times an update from the first line after the PUT to the new pid Running', () => {
    expect(updateLogTimes(lines, 'a', 1990, 9)).toEqual({ firstLineAt: 2000, runningAt: 2005 });
    expect(updateLogTimes(lines, 'a', 1990, 10)).toEqual({ firstLineAt: 2000, runningAt: null });
    expect(updateLogTimes(lines, 'b', 1990, 8)).toEqual({ firstLineAt: null, runningAt: null });
  });

  it('times a cold start to the last workload Running and counts reaped orphans', () => {
    expect(coldStartLogTimes(lines, ['a', 'b'])).toEqual({ firstLineAt: 1000, orphansReapedAt: 900, firstRunningAt: 950, readyAt: 1000, lastRunningAt: 960, orphansStopped: 1 });
    expect(coldStartLogTimes(lines, ['a', 'b', 'z']).lastRunningAt).toBeNull();
  });
});
