import { describe, expect, it } from 'vitest';
import { findReadyLine } from './cloudcoreProcess.js';
import { parseCpuTicks, parseVmRssBytes, procDelta, sampleProcess, clockTicksPerSecond } from './procStats.js';

describe('/proc parsing', () => {
  it('reads VmRSS in bytes', () => {
    expect(parseVmRssBytes('Name:\tnode\nVmRSS:\t   51200 kB\nRssAnon:\t1 kB\n')).toBe(51200 * 1024);
    expect(() => parseVmRssBytes('Name:\tnode\n')).toThrow(/VmRSS/);
  });

  it('reads utime and stime even when the command name holds spaces and parentheses', () => {
    const stat = '1234 (node (x) y) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 11 0 100 1000 200';
    expect(parseCpuTicks(stat)).toEqual({ utime: 250, stime: 75 });
  });

  it('samples a live process and computes deltas', () => {
    const a = sampleProcess(process.pid, clockTicksPerSecond());
    expect(a.rssBytes).toBeGreaterThan(1024 * 1024);
    const d = procDelta({ at: 0, rssBytes: 2 ** 20, cpuSeconds: 1 }, { at: 2000, rssBytes: 3 * 2 ** 20, cpuSeconds: 2 });
    expect(d).toEqual({ rssBeforeMiB: 1, rssAfterMiB: 3, cpuSeconds: 1, cpuPercentOfOneCore: 50 });
  });

  it('finds the cloudcore ready line in a pino log', () => {
    const log = '{"level":30,"msg":"other"}\n{"level":30,"url":"http://127.0.0.1:4000","adminTokenFile":"/d/admin.token","msg":"cloudcore ready"}\n{"lev';
    expect(findReadyLine(log)).toEqual({ url: 'http://127.0.0.1:4000', adminTokenFile: '/d/admin.token' });
    expect(findReadyLine('{"msg":"cloudcore ready"')).toBeUndefined();
  });
});
