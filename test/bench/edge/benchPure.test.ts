import { describe, expect, it } from 'vitest';
import { containerApp, planKinds, processApp } from './benchWorkloads.js';
import { spread, targetCheck, type ColdStartSeries } from './edgeReport.js';
import { probeDeltas } from './memoryProbes.js';
import type { IdleFigures } from './phases.js';
import { childPidsFrom, parseMemoryBreakdown } from './procMemory.js';
import { bestFlagSet, coldStartCandidates, flagSetsNamed } from './v8Variants.js';

describe('/proc memory parsing', () => {
  it('splits RSS into anon and file-backed pages', () => {
    const text = 'Name:\tnode\nVmHWM:\t  90000 kB\nVmRSS:\t  80000 kB\nRssAnon:\t  30000 kB\nRssFile:\t  49000 kB\nRssShmem:\t  1000 kB\nThreads:\t11\n';
    expect(parseMemoryBreakdown(text)).toEqual({
      rssBytes: 80000 * 1024, rssAnonBytes: 30000 * 1024, rssFileBytes: 49000 * 1024, rssShmemBytes: 1000 * 1024, hwmBytes: 90000 * 1024, threads: 11,
    });
    expect(() => parseMemoryBreakdown('Name:\tx\n')).toThrow(/VmRSS/);
  });

  it('finds direct children by ppid, skipping zombies and other parents', () => {
    const stat = (pid: number, state: string, ppid: number) => `${pid} (sle ep) ${state} ${ppid} ${pid} ${pid} 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 500 1 1`;
    const children = childPidsFrom(10, [[12, stat(12, 'S', 10)], [11, stat(11, 'S', 10)], [13, stat(13, 'Z', 10)], [14, stat(14, 'S', 1)]]);
    expect(children).toEqual([11, 12]);
  });
});

describe('workload plan', () => {
  it('places process and container apps on their node by label', () => {
    const plans = planKinds(3, 2);
    expect(plans[0]).toMatchObject({ kind: 'process', count: 3, skipped: null, appNames: ['bench-proc-00', 'bench-proc-01', 'bench-proc-02'] });
    expect(plans[1]).toEqual({ kind: 'container', count: 2, skipped: null, appNames: ['bench-ctr-00', 'bench-ctr-01'] });
    expect(planKinds(1, 0)).toHaveLength(1);
    const app = processApp('bench-proc-00', 'edge-1', 4);
    expect(app.spec.selector.matchLabels).toEqual({ 'bench.edgefleet.io/node': 'edge-1' });
    expect(app.spec.template.env).toEqual({ BENCH_REVISION: '4' });
    const ctr = containerApp('bench-ctr-00', 'edge-2', 2);
    expect(ctr.spec.selector.matchLabels).toEqual({ 'bench.edgefleet.io/node': 'edge-2' });
    expect(ctr.spec.template).toMatchObject({ runtime: 'container', imagePullPolicy: 'Never', env: { BENCH_REVISION: '2' } });
  });
});

describe('flag sets', () => {
  it('always keeps the default set and refuses unknown names', () => {
    expect(flagSetsNamed(['lite']).map((f) => f.name)).toEqual(['default', 'lite']);
    expect(() => flagSetsNamed(['turbo'])).toThrow(/turbo/);
  });

  it('picks the healthy set with the lowest RSS, only if it saves at least 1 MiB', () => {
    const base = { name: 'default', flags: [], rssEndMiB: 70, healthy: true };
    const lite = { name: 'lite', flags: ['--lite-mode'], rssEndMiB: 65, healthy: true };
    const jitless = { name: 'jitless', flags: ['--jitless'], rssEndMiB: 50, healthy: false };
    expect(bestFlagSet([base, lite, jitless])?.name).toBe('lite');
    expect(bestFlagSet([base, { ...lite, rssEndMiB: 69.5 }])).toBeNull();
    expect(bestFlagSet([base])).toBeNull();
  });

  it('cold-starts the best set and, if that is jitless, the best set that keeps the JIT', () => {
    const base = { name: 'default', flags: [], rssEndMiB: 70, healthy: true };
    const lite = { name: 'lite', flags: ['--lite-mode'], rssEndMiB: 65, healthy: true };
    const jitless = { name: 'jitless', flags: ['--jitless'], rssEndMiB: 55, healthy: true };
    expect(coldStartCandidates([base, lite, jitless]).map((o) => o.name)).toEqual(['jitless', 'lite']);
    expect(coldStartCandidates([base, lite]).map((o) => o.name)).toEqual(['lite']);
    expect(coldStartCandidates([base, jitless]).map((o) => o.name)).toEqual(['jitless']);
    expect(coldStartCandidates([base])).toEqual([]);
  });
});

describe('report arithmetic', () => {
  it('summarizes min/p50/max ignoring missing values', () => {
    expect(spread([30, null, 10, 20])).toEqual({ count: 3, min: 10, p50: 20, max: 30 });
    expect(spread([null])).toBeNull();
  });

  it('checks the targets against idle RSS and the slowest cold start', () => {
    const idle = { rssEndMiB: 59.9 } as IdleFigures;
    const cold = { allRunningStatusMs: { count: 2, min: 500, p50: 500, max: 1000 } } as ColdStartSeries;
    expect(targetCheck(idle, cold)).toMatchObject({ idleRssMet: true, coldStartMet: false });
  });

  it('turns probe snapshots into per-step increments', () => {
    const mib = 2 ** 20;
    const snap = (label: string, rss: number, ms: number) => ({ label, rss: rss * mib, heapTotal: 0, heapUsed: rss * mib / 2, external: 0, arrayBuffers: 0, rssAnon: rss * mib / 4, rssFile: 0, ms });
    expect(probeDeltas([snap('node baseline', 40, 0), snap('zod', 52, 100)])).toEqual([
      { label: 'node baseline', rssMiB: 40, rssAnonMiB: 10, heapUsedMiB: 20, externalMiB: 0, ms: 0 },
      { label: 'zod', rssMiB: 12, rssAnonMiB: 3, heapUsedMiB: 6, externalMiB: 0, ms: 100 },
    ]);
  });
});
