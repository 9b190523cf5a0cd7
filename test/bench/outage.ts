import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { summarizeLatencies, sumStats, type LatencySummary } from './figures.js';
import { awaitTemplateEverywhere } from './fleet.js';
import type { CutMode, LinkCut } from './linkCut.js';
import type { Probe } from './measure.js';
import { round, sampleProcess, type ProcSample } from './procStats.js';

/**
 * The outage phase of bench:fanout: every link is cut, the app is changed during the cut, the
 * links are restored, and the phase measures how long the fleet takes to resume and ack the
 * change, and what the reconnect wave costs cloudcore at its peak.
 */
export interface OutageResult {
  mode: CutMode;
  cutSeconds: number;
  /** Edges holding the change before the links came back (should be 0: nothing reaches them). */
  ackedDuringCut: number;
  /** From the restore until the last edge applied and acked the change made during the cut. */
  allAckedAfterRestoreMs: number;
  /** Per edge, ms from the restore until it held the change. */
  ackAfterRestoreMs: LatencySummary;
  reconnects: number;
  snapshots: number;
  /** Errors the cloud sent the links (an admission refusal is not an error frame; it is counted in reconnects). */
  errorsFromCloud: number;
  /** cloudcore from the restore until the last ack: the reconnect wave. */
  cloud: { peakRssMiB: number; peakCpuPercentOfOneCore: number; cpuSeconds: number };
}

export interface OutageOptions {
  app: string;
  marker: string;
  mode: CutMode;
  cutSeconds: number;
  /** When in the cut the app is changed (the REST call passes the cut). */
  changeAfterMs: number;
  timeoutMs: number;
  cut: LinkCut;
  change: () => Promise<unknown>;
  log: (line: string) => void;
}

/** Samples a process every `everyMs`, keeping the peak RSS and the busiest window's CPU. */
class PeakSampler {
  private timer: NodeJS.Timeout | undefined;
  private last: ProcSample;
  readonly first: ProcSample;
  peakRssBytes = 0;
  peakCpuPercent = 0;

  constructor(private readonly pid: number, private readonly clockTicks: number, everyMs = 500) {
    this.first = sampleProcess(pid, clockTicks);
    this.last = this.first;
    this.peakRssBytes = this.first.rssBytes;
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): ProcSample {
    const now = sampleProcess(this.pid, this.clockTicks);
    const seconds = (now.at - this.last.at) / 1000;
    if (seconds > 0) this.peakCpuPercent = Math.max(this.peakCpuPercent, (100 * (now.cpuSeconds - this.last.cpuSeconds)) / seconds);
    this.peakRssBytes = Math.max(this.peakRssBytes, now.rssBytes);
    this.last = now;
    return now;
  }

  stop(): { peakRssMiB: number; peakCpuPercentOfOneCore: number; cpuSeconds: number } {
    clearInterval(this.timer);
    const end = this.sample();
    return {
      peakRssMiB: round(this.peakRssBytes / 2 ** 20, 1),
      peakCpuPercentOfOneCore: round(this.peakCpuPercent, 1),
      cpuSeconds: round(end.cpuSeconds - this.first.cpuSeconds, 2),
    };
  }
}

export async function measureOutage(p: Probe, o: OutageOptions): Promise<OutageResult> {
  const before = sumStats(p.edges.map((e) => e.link.stats));
  const tCut = performance.now();
  // Latencies are measured from the cut; the cut's length is taken off once the links are back.
  const acked = awaitTemplateEverywhere(p.edges, o.app, o.marker, tCut, o.cutSeconds * 1000 + o.timeoutMs);
  acked.catch(() => undefined);
  await o.cut.cut(o.mode);
  o.log(`  links cut (${o.mode}); changing the app after ${o.changeAfterMs} ms`);
  let tRestore = 0;
  try {
    await sleep(o.changeAfterMs);
    await o.change();
    await sleep(Math.max(0, tCut + o.cutSeconds * 1000 - performance.now()));
  } finally {
    // Timed from the first rule's removal: an edge may be back before the last one is gone.
    tRestore = performance.now();
    await o.cut.restore();
  }
  o.log(`  links restored after ${round((tRestore - tCut) / 1000, 1)} s; waiting for every node to ack the change`);
  const sampler = new PeakSampler(p.cloudPid, p.clockTicks);
  let latencies: number[];
  let cloud: OutageResult['cloud'];
  try {
    latencies = await acked;
  } finally {
    cloud = sampler.stop();
  }
  const cutMs = tRestore - tCut;
  const afterRestore = latencies.map((ms) => ms - cutMs);
  const after = sumStats(p.edges.map((e) => e.link.stats));
  const lat = summarizeLatencies(afterRestore.map((ms) => Math.max(0, ms)));
  return {
    mode: o.mode,
    cutSeconds: round(cutMs / 1000, 1),
    ackedDuringCut: afterRestore.filter((ms) => ms < 0).length,
    allAckedAfterRestoreMs: round(lat.max, 1),
    ackAfterRestoreMs: { count: lat.count, min: round(lat.min, 1), p50: round(lat.p50, 1), p90: round(lat.p90, 1), p99: round(lat.p99, 1), max: round(lat.max, 1) },
    reconnects: after.connects - before.connects,
    snapshots: after.snapshots - before.snapshots,
    errorsFromCloud: after.errorsFromCloud - before.errorsFromCloud,
    cloud,
  };
}

export function outageText(r: OutageResult): string[] {
  const l = r.ackAfterRestoreMs;
  return [
    `  ${r.mode} cut of ${r.cutSeconds} s, app changed during it: every node resumed and acked ${(r.allAckedAfterRestoreMs / 1000).toFixed(2)} s after the restore`,
    `    per node after the restore: min ${l.min} / p50 ${l.p50} / p90 ${l.p90} / p99 ${l.p99} / max ${l.max} ms`,
    `    ${r.reconnects} reconnects, ${r.snapshots} snapshots, ${r.errorsFromCloud} error frames, ${r.ackedDuringCut} nodes got the change during the cut`,
    `    cloudcore during the reconnect wave: peak RSS ${r.cloud.peakRssMiB} MiB, peak CPU ${r.cloud.peakCpuPercentOfOneCore} % of one core (0.5 s windows), ${r.cloud.cpuSeconds} CPU s`,
  ];
}
