import { readdirSync, readFileSync } from 'node:fs';
import { parseProcStat } from '../../../edgecore/runtime/processGroup.js';
import { parseCpuTicks } from '../procStats.js';

/**
 * Memory and CPU of one process from Linux /proc, split the way the edge-footprint question
 * needs it: anonymous memory (V8 heap, malloc, stacks: what edgecore really costs) versus
 * file-backed pages (mostly the node binary and shared libraries, which the page cache shares
 * with every other node process), plus its direct children (the workloads, counted apart).
 */

export interface MemoryBreakdown {
  rssBytes: number;
  /** Anonymous pages: heap, malloc arenas, stacks. */
  rssAnonBytes: number;
  /** File-backed pages: code of node and shared libraries (shared with other processes). */
  rssFileBytes: number;
  rssShmemBytes: number;
  /** Peak RSS since the process started. */
  hwmBytes: number;
  threads: number;
}

function kbField(text: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB$`, 'm').exec(text);
  if (!match) throw new Error(`no ${name} line in /proc/<pid>/status`);
  return Number(match[1]) * 1024;
}

/** The memory lines of /proc/<pid>/status (kB values) in bytes. */
export function parseMemoryBreakdown(statusText: string): MemoryBreakdown {
  const threads = /^Threads:\s+(\d+)$/m.exec(statusText);
  return {
    rssBytes: kbField(statusText, 'VmRSS'),
    rssAnonBytes: kbField(statusText, 'RssAnon'),
    rssFileBytes: kbField(statusText, 'RssFile'),
    rssShmemBytes: kbField(statusText, 'RssShmem'),
    hwmBytes: kbField(statusText, 'VmHWM'),
    threads: threads ? Number(threads[1]) : 0,
  };
}

export interface ProcessSample {
  at: number;
  memory: MemoryBreakdown;
  /** user + system CPU seconds since start. */
  cpuSeconds: number;
}

export function sampleProcessMemory(pid: number, clockTicks: number): ProcessSample {
  const memory = parseMemoryBreakdown(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const { utime, stime } = parseCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return { at: Date.now(), memory, cpuSeconds: (utime + stime) / clockTicks };
}

/** Pids whose parent is `parentPid`, from (pid, /proc/<pid>/stat text) pairs; zombies excluded. */
export function childPidsFrom(parentPid: number, stats: Iterable<[number, string]>): number[] {
  const children: number[] = [];
  for (const [pid, text] of stats) {
    const stat = parseProcStat(text);
    if (stat !== null && stat.ppid === parentPid && stat.state !== 'Z') children.push(pid);
  }
  return children.sort((a, b) => a - b);
}

function* procStats(): Generator<[number, string]> {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      yield [Number(entry), readFileSync(`/proc/${entry}/stat`, 'utf8')];
    } catch {
      // exited between readdir and read
    }
  }
}

export interface ChildrenMemory {
  count: number;
  rssBytes: number;
  rssAnonBytes: number;
}

/** RSS of the direct children of `pid` (edgecore's workloads), summed. */
export function childrenMemory(pid: number): ChildrenMemory {
  const sum: ChildrenMemory = { count: 0, rssBytes: 0, rssAnonBytes: 0 };
  for (const child of childPidsFrom(pid, procStats())) {
    try {
      const m = parseMemoryBreakdown(readFileSync(`/proc/${child}/status`, 'utf8'));
      sum.count += 1;
      sum.rssBytes += m.rssBytes;
      sum.rssAnonBytes += m.rssAnonBytes;
    } catch {
      // exited meanwhile
    }
  }
  return sum;
}

export const MiB = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
