import { readFileSync } from 'node:fs';
import { round, sampleProcess, sampleSelf, type ProcSample } from '../procStats.js';

/**
 * What the whole machine and each of the run's processes did during a measuring window: on a
 * 2-core box shared with other work, the broker's figures mean little without the load beside
 * them.
 */

export interface CpuTicks {
  busy: number;
  total: number;
  /**
   * Time the hypervisor ran other guests while this one had work (inside `busy`). On a shared
   * VM it can take a third of the cores for minutes: runs with high steal are not comparable.
   */
  steal: number;
}

/** The aggregate `cpu` line of /proc/stat: busy = everything except idle and iowait. */
export function parseProcStatCpu(text: string): CpuTicks {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('no aggregate cpu line in /proc/stat');
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 4 || fields.some((f) => !Number.isFinite(f))) throw new Error('malformed cpu line in /proc/stat');
  // user nice system idle iowait irq softirq steal (guest time is already inside user/nice)
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = fields[3]! + (fields[4] ?? 0);
  return { busy: total - idle, total, steal: fields[7] ?? 0 };
}

export function machineCpu(): CpuTicks {
  return parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
}

/** Busy share of all cores between two samples, in percent (100 = every core busy). */
export function busyPercent(before: CpuTicks, after: CpuTicks): number {
  const total = after.total - before.total;
  return total > 0 ? round(((after.busy - before.busy) / total) * 100, 1) : 0;
}

/** Share of all cores the host gave to other guests between two samples, in percent. */
export function stealPercent(before: CpuTicks, after: CpuTicks): number {
  const total = after.total - before.total;
  return total > 0 ? round(((after.steal - before.steal) / total) * 100, 1) : 0;
}

export interface ProcessGroup {
  label: string;
  pids: number[];
  /** The benchmark process itself is read through Node's own counters. */
  self?: boolean;
}

export interface GroupFigures {
  /** CPU time per wall second, summed over the group's processes: 100 = one full core. */
  cpuPercentOfOneCore: number;
  /** Largest summed RSS seen by the 1 s samples and the end sample. */
  rssMaxMiB: number;
}

function sampleGroup(group: ProcessGroup, clockTicks: number): ProcSample {
  const samples = group.self ? [sampleSelf()] : group.pids.flatMap((pid) => {
    try {
      return [sampleProcess(pid, clockTicks)];
    } catch {
      return []; // exited meanwhile
    }
  });
  return {
    at: Date.now(),
    rssBytes: samples.reduce((s, p) => s + p.rssBytes, 0),
    cpuSeconds: samples.reduce((s, p) => s + p.cpuSeconds, 0),
  };
}

/** Samples the groups at start, every second (for peak RSS) and at stop(). */
export class LoadWindow {
  private readonly first: ProcSample[];
  private readonly machineFirst = machineCpu();
  private readonly rssMax: number[];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly groups: ProcessGroup[], private readonly clockTicks: number) {
    this.first = groups.map((g) => sampleGroup(g, clockTicks));
    this.rssMax = this.first.map((s) => s.rssBytes);
    this.timer = setInterval(() => this.sampleRss(), 1000);
  }

  private sampleRss(): void {
    this.groups.forEach((g, i) => { this.rssMax[i] = Math.max(this.rssMax[i]!, sampleGroup(g, this.clockTicks).rssBytes); });
  }

  stop(): { machineBusyPercent: number; machineStealPercent: number; groups: Record<string, GroupFigures> } {
    clearInterval(this.timer);
    const last = this.groups.map((g) => sampleGroup(g, this.clockTicks));
    const groups: Record<string, GroupFigures> = {};
    this.groups.forEach((g, i) => {
      const a = this.first[i]!;
      const b = last[i]!;
      const wall = Math.max((b.at - a.at) / 1000, 1e-3);
      groups[g.label] = {
        cpuPercentOfOneCore: round(((b.cpuSeconds - a.cpuSeconds) / wall) * 100, 1),
        rssMaxMiB: round(Math.max(this.rssMax[i]!, b.rssBytes) / 2 ** 20, 1),
      };
    });
    const machine = machineCpu();
    return { machineBusyPercent: busyPercent(this.machineFirst, machine), machineStealPercent: stealPercent(this.machineFirst, machine), groups };
  }
}
