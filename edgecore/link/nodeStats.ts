import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import type { NodeStatsSample } from '../../protocol/index.js';
import { readDisk, readMemory } from '../hostReadings.js';

/**
 * The node's CPU, memory and disk, sampled on a timer and sent to the cloud on the next
 * heartbeat (the dashboard's "last hour" chart). CPU comes from /proc/stat, as `top` reads it
 * (elsewhere Node's `os` module stands in); memory and disk are read as the local status page
 * reads them (edgecore/hostReadings.ts). Parsing is pure and tested apart from the reads.
 */

/** Cumulative CPU time from the `cpu` line of /proc/stat, in USER_HZ ticks. */
export interface CpuTimes { busy: number; total: number }

/** The aggregate `cpu ` line: user nice system idle iowait irq softirq steal (guest is inside user). */
export function parseProcStat(text: string): CpuTimes | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (fields.length < 4 || fields.some((n) => !Number.isFinite(n))) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const idleAll = idle + iowait;
  const total = user + nice + system + idleAll + irq + softirq + steal;
  return { busy: total - idleAll, total };
}

/** Busy share between two readings, 0–100; undefined when no time passed. */
export function cpuPercentBetween(previous: CpuTimes, current: CpuTimes): number | undefined {
  const total = current.total - previous.total;
  if (total <= 0) return undefined;
  const busy = Math.min(Math.max(current.busy - previous.busy, 0), total);
  return Math.round((busy / total) * 1000) / 10;
}

/** Portable CPU times from os.cpus() (used where /proc/stat is missing). */
function osCpuTimes(): CpuTimes {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

async function readCpuTimes(): Promise<CpuTimes> {
  const text = await readFile('/proc/stat', 'utf8').catch(() => undefined);
  return (text !== undefined ? parseProcStat(text) : undefined) ?? osCpuTimes();
}

export interface NodeStatsSamplerOptions {
  /** The edge's data directory: its filesystem is the disk reported. */
  dataDir: string;
  intervalMs: number;
  log?: { warn(o: object, m?: string): void };
}

/** Samples on a timer; `take()` hands the newest sample out once (to ride the next heartbeat). */
export class NodeStatsSampler {
  private timer: NodeJS.Timeout | undefined;
  private previousCpu: CpuTimes | undefined;
  private newest: NodeStatsSample | undefined;
  private warned = false;

  constructor(private readonly opts: NodeStatsSamplerOptions) {}

  async start(): Promise<void> {
    // The first CPU reading is only a baseline: a share needs two.
    this.previousCpu = await readCpuTimes().catch(() => undefined);
    this.timer = setInterval(() => void this.sample(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The newest sample not handed out yet. */
  take(): NodeStatsSample | undefined {
    const sample = this.newest;
    this.newest = undefined;
    return sample;
  }

  async sample(): Promise<NodeStatsSample | undefined> {
    try {
      const cpu = await readCpuTimes();
      const memory = readMemory();
      const disk = readDisk(this.opts.dataDir);
      const cpuPercent = this.previousCpu ? cpuPercentBetween(this.previousCpu, cpu) : undefined;
      this.previousCpu = cpu;
      if (cpuPercent === undefined) return undefined;
      this.newest = {
        cpuPercent,
        memoryUsedBytes: Math.max(memory.totalBytes - memory.availableBytes, 0), memoryTotalBytes: memory.totalBytes,
        diskUsedBytes: disk.usedBytes, diskTotalBytes: disk.totalBytes,
      };
      return this.newest;
    } catch (err) {
      // Once: a data dir on an odd filesystem should not flood the log every minute.
      if (!this.warned) this.opts.log?.warn({ err: (err as Error).message }, 'could not sample node stats');
      this.warned = true;
      return undefined;
    }
  }
}
