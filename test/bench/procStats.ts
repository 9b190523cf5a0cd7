import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Resident memory and CPU time of a process, read from Linux /proc, so the cloudcore child
 * is measured on its own and not mixed with the benchmark process that simulates the edges.
 */

export interface ProcSample {
  /** Wall-clock time of the sample (ms since epoch). */
  at: number;
  rssBytes: number;
  /** user + system CPU time since the process started. */
  cpuSeconds: number;
}

/** `VmRSS:    123456 kB` from /proc/<pid>/status, in bytes. */
export function parseVmRssBytes(statusText: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(statusText);
  if (!match) throw new Error('no VmRSS line in /proc/<pid>/status');
  return Number(match[1]) * 1024;
}

/**
 * utime and stime (fields 14 and 15, in clock ticks) from /proc/<pid>/stat. The command name
 * (field 2) is in parentheses and may itself contain spaces or ")", so count from the last ")".
 */
export function parseCpuTicks(statText: string): { utime: number; stime: number } {
  const close = statText.lastIndexOf(')');
  if (close < 0) throw new Error('malformed /proc/<pid>/stat');
  // After ") " come field 3 (state), 4, ...; utime is field 14, i.e. index 11 here.
  const fields = statText.slice(close + 2).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('malformed /proc/<pid>/stat: no utime/stime');
  return { utime, stime };
}

/** Clock ticks per second for /proc CPU fields (`getconf CLK_TCK`, 100 on nearly every Linux). */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

export function sampleProcess(pid: number, clockTicks: number): ProcSample {
  const rssBytes = parseVmRssBytes(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const { utime, stime } = parseCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return { at: Date.now(), rssBytes, cpuSeconds: (utime + stime) / clockTicks };
}

/** The benchmark process itself (simulated edges), through Node's own counters. */
export function sampleSelf(): ProcSample {
  const cpu = process.cpuUsage();
  return { at: Date.now(), rssBytes: process.memoryUsage().rss, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

export interface ProcDelta {
  rssBeforeMiB: number;
  rssAfterMiB: number;
  cpuSeconds: number;
  /** CPU seconds per wall second, as a percentage of one core. */
  cpuPercentOfOneCore: number;
}

export function procDelta(before: ProcSample, after: ProcSample): ProcDelta {
  const wallSeconds = Math.max((after.at - before.at) / 1000, 1e-3);
  const cpuSeconds = after.cpuSeconds - before.cpuSeconds;
  return {
    rssBeforeMiB: round(before.rssBytes / 2 ** 20, 1),
    rssAfterMiB: round(after.rssBytes / 2 ** 20, 1),
    cpuSeconds: round(cpuSeconds, 2),
    cpuPercentOfOneCore: round((cpuSeconds / wallSeconds) * 100, 1),
  };
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** 1-, 5- and 15-minute load averages: other work on a 2-core box skews every figure. */
export function loadAverage(): number[] {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

/** Soft limit on open files of this process (the child inherits it), from /proc/self/limits. */
export function openFilesLimit(): number | undefined {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!match) return undefined;
    return match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
  } catch {
    return undefined;
  }
}
