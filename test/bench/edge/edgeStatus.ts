import { z } from 'zod';

/**
 * The part of edgecore's `GET /status` the benchmark reads, parsed with zod (it is another
 * process's output), and the pure conditions the benchmark polls for.
 */

const WorkloadStatusSchema = z.object({
  state: z.string(),
  pid: z.number().int().nullish(),
  generation: z.number().int().optional(),
  restarts: z.number().int().optional(),
});

export const EdgeStatusSchema = z.object({
  node: z.string(),
  link: z.object({ state: z.string() }),
  workloads: z.array(z.object({
    name: z.string(),
    generation: z.number().int(),
    runtime: z.string().optional(),
    status: WorkloadStatusSchema.nullable(),
  })),
});
export type EdgeStatus = z.infer<typeof EdgeStatusSchema>;

/** The pid of `name` when it runs at `generation` (any generation if omitted), else null. */
export function runningPid(status: EdgeStatus, name: string, generation?: number): number | null {
  const w = status.workloads.find((x) => x.name === name);
  const s = w?.status;
  if (!s || s.state !== 'Running' || !s.pid) return null;
  if (generation !== undefined && s.generation !== generation) return null;
  return s.pid;
}

/**
 * True when every workload in `names` is Running with a pid that is not in `stalePids`
 * (the processes of a killed edgecore, which must be replaced, not counted).
 */
export function allRunning(status: EdgeStatus, names: readonly string[], stalePids: ReadonlySet<number> = new Set()): boolean {
  return names.every((name) => {
    const pid = runningPid(status, name);
    return pid !== null && !stalePids.has(pid);
  });
}

export function runningCount(status: EdgeStatus, names: readonly string[]): number {
  return names.filter((name) => runningPid(status, name) !== null).length;
}

/** Every pid the status reports, to clean up after a failed run. */
export function reportedPids(status: EdgeStatus): number[] {
  return status.workloads.flatMap((w) => (w.status?.pid ? [w.status.pid] : []));
}

/** One pino JSON log line as the benchmark uses it (`time` is ms since the epoch). */
export interface EdgeLogLine {
  msg?: string;
  time?: number;
  workload?: string;
  state?: string;
  pid?: number;
  [key: string]: unknown;
}

/** Parses complete lines of a pino log; lines that are not JSON objects are skipped. */
export function parseLogLines(text: string): EdgeLogLine[] {
  const lines: EdgeLogLine[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.startsWith('{')) continue;
    try {
      const value: unknown = JSON.parse(raw);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) lines.push(value as EdgeLogLine);
    } catch {
      // not a log line of ours (a stray write); nothing to time from it
    }
  }
  return lines;
}

export interface UpdateLogTimes {
  /** First line about the workload at or after the PUT: the edge acting on the change. */
  firstLineAt: number | null;
  /** `workload state` Running with the new pid. */
  runningAt: number | null;
}

/** Edge-side times of one update of `workload`, from its log lines (ms since the epoch). */
export function updateLogTimes(lines: readonly EdgeLogLine[], workload: string, sinceMs: number, newPid: number): UpdateLogTimes {
  let firstLineAt: number | null = null;
  let runningAt: number | null = null;
  for (const line of lines) {
    if (line.workload !== workload || typeof line.time !== 'number' || line.time < sinceMs) continue;
    firstLineAt ??= line.time;
    if (line.msg === 'workload state' && line.state === 'Running' && line.pid === newPid) runningAt ??= line.time;
  }
  return { firstLineAt, runningAt };
}

export interface ColdStartLogTimes {
  /** First line of any kind: node is up, modules are loaded, main() runs. */
  firstLineAt: number | null;
  /** Last `stopped workload left by a previous edgecore` (orphans reaped). */
  orphansReapedAt: number | null;
  firstRunningAt: number | null;
  readyAt: number | null;
  /** `workload state` Running of the last of `names` to get there. */
  lastRunningAt: number | null;
  /** How many `stopped workload left by a previous edgecore` lines (orphans reaped). */
  orphansStopped: number;
}

export function coldStartLogTimes(lines: readonly EdgeLogLine[], names: readonly string[]): ColdStartLogTimes {
  const wanted = new Set(names);
  const running = new Map<string, number>();
  let firstLineAt: number | null = null;
  let orphansReapedAt: number | null = null;
  let readyAt: number | null = null;
  let orphansStopped = 0;
  for (const line of lines) {
    if (typeof line.time !== 'number') continue;
    firstLineAt ??= line.time;
    if (line.msg === 'edgecore ready') readyAt ??= line.time;
    if (line.msg === 'stopped workload left by a previous edgecore') {
      orphansStopped += 1;
      orphansReapedAt = Math.max(orphansReapedAt ?? 0, line.time);
    }
    if (line.msg === 'workload state' && line.state === 'Running' && line.workload && wanted.has(line.workload) && !running.has(line.workload)) {
      running.set(line.workload, line.time);
    }
  }
  const lastRunningAt = running.size === wanted.size && wanted.size > 0 ? Math.max(...running.values()) : null;
  const firstRunningAt = running.size > 0 ? Math.min(...running.values()) : null;
  return { firstLineAt, orphansReapedAt, firstRunningAt, readyAt, lastRunningAt, orphansStopped };
}
