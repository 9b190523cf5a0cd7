import type { NodeStatsSample } from '../../protocol/index.js';

/**
 * The last hour of CPU, memory and disk per node, as the edges report them on their
 * heartbeats, for the dashboard's node chart. Memory only, and compact: at 10,000 nodes and
 * one sample a minute this is 60 samples × 20 bytes per node (typed arrays, no object per
 * sample), about 12 MiB. Lost on restart, like a `top` window. Pure (the caller passes the clock).
 */

export const STATS_WINDOW_MS = 60 * 60 * 1000;
export const DEFAULT_MAX_SAMPLES_PER_NODE = 240;
const INITIAL_CAPACITY = 16;

export interface NodeStatsPoint {
  /** Receive time at the cloud, ms since the epoch (edge clocks may be off). */
  t: number;
  cpuPercent: number;
  memoryUsedBytes: number;
  diskUsedBytes: number;
}

export interface NodeStatsSeries {
  points: NodeStatsPoint[];
  /** Totals from the newest sample (they rarely change), null before any sample. */
  memoryTotalBytes: number | null;
  diskTotalBytes: number | null;
}

/** A ring of samples; grows by doubling up to `max` so idle or short-lived nodes stay small. */
class Ring {
  times = new Float64Array(INITIAL_CAPACITY);
  cpu = new Float32Array(INITIAL_CAPACITY);
  // Bytes as float32: ±0.00001 % is plenty for a chart, at half the size of float64.
  memory = new Float32Array(INITIAL_CAPACITY);
  disk = new Float32Array(INITIAL_CAPACITY);
  start = 0;
  count = 0;
  memoryTotal = 0;
  diskTotal = 0;

  constructor(private readonly max: number) {}

  private get capacity(): number { return this.times.length; }

  push(t: number, s: NodeStatsSample): void {
    if (this.count === this.capacity && this.capacity < this.max) this.grow(Math.min(this.capacity * 2, this.max));
    const at = (this.start + this.count) % this.capacity;
    this.times[at] = t;
    this.cpu[at] = s.cpuPercent;
    this.memory[at] = s.memoryUsedBytes;
    this.disk[at] = s.diskUsedBytes;
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
    this.memoryTotal = s.memoryTotalBytes;
    this.diskTotal = s.diskTotalBytes;
  }

  /** Drops samples older than `from`. */
  trim(from: number): void {
    while (this.count > 0 && this.times[this.start]! < from) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
  }

  points(from: number): NodeStatsPoint[] {
    const out: NodeStatsPoint[] = [];
    for (let i = 0; i < this.count; i++) {
      const at = (this.start + i) % this.capacity;
      const t = this.times[at]!;
      if (t < from) continue;
      out.push({ t, cpuPercent: Math.round(this.cpu[at]! * 10) / 10, memoryUsedBytes: Math.round(this.memory[at]!), diskUsedBytes: Math.round(this.disk[at]!) });
    }
    return out;
  }

  private grow(capacity: number): void {
    const reorder = <A extends Float64Array | Float32Array>(old: A, fresh: A): A => {
      for (let i = 0; i < this.count; i++) fresh[i] = old[(this.start + i) % old.length]!;
      return fresh;
    };
    this.times = reorder(this.times, new Float64Array(capacity));
    this.cpu = reorder(this.cpu, new Float32Array(capacity));
    this.memory = reorder(this.memory, new Float32Array(capacity));
    this.disk = reorder(this.disk, new Float32Array(capacity));
    this.start = 0;
  }
}

export class NodeStatsHistory {
  private readonly rings = new Map<string, Ring>();

  constructor(private readonly opts: { windowMs?: number; maxSamplesPerNode?: number } = {}) {}

  private get windowMs(): number { return this.opts.windowMs ?? STATS_WINDOW_MS; }

  record(node: string, now: number, sample: NodeStatsSample): void {
    let ring = this.rings.get(node);
    if (!ring) {
      ring = new Ring(Math.max(1, this.opts.maxSamplesPerNode ?? DEFAULT_MAX_SAMPLES_PER_NODE));
      this.rings.set(node, ring);
    }
    ring.trim(now - this.windowMs);
    ring.push(now, sample);
  }

  /** Samples received after `sinceMs` and within the window, oldest first. */
  series(node: string, sinceMs: number, now: number): NodeStatsSeries {
    const ring = this.rings.get(node);
    if (!ring) return { points: [], memoryTotalBytes: null, diskTotalBytes: null };
    ring.trim(now - this.windowMs);
    return { points: ring.points(sinceMs + 1), memoryTotalBytes: ring.memoryTotal, diskTotalBytes: ring.diskTotal };
  }

  /** The node was deleted. */
  forget(node: string): void {
    this.rings.delete(node);
  }
}
