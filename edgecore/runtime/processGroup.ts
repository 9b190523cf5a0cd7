import { readdirSync, readFileSync } from 'node:fs';
import { isErrno } from './cappedLog.js';

/**
 * Linux process facts from /proc and process-group signalling.
 *
 * Workloads are spawned detached, so each is the leader of its own session and process group
 * (pgid = its pid) and one signal to `-pgid` reaches everything it forked. A pid alone does not
 * identify a process (pids are reused); pid + start time (field 22 of /proc/<pid>/stat, clock
 * ticks since boot) does. Without /proc (not Linux) every lookup answers "unknown", and callers
 * then never signal a process they did not spawn themselves.
 */

export interface ProcStat {
  /** One-letter state: R, S, D, Z (zombie), T, … */
  state: string;
  ppid: number;
  pgrp: number;
  /** Field 22: start time in clock ticks after boot. */
  startTicks: number;
}

/** Parses the text of /proc/<pid>/stat. The command name (field 2) may contain spaces and ')'. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 2).trim().split(/\s+/); // fields[0] is field 3
  if (fields.length < 20) return null;
  const ppid = Number(fields[1]);
  const pgrp = Number(fields[2]);
  const startTicks = Number(fields[19]);
  if (![ppid, pgrp, startTicks].every(Number.isSafeInteger)) return null;
  return { state: fields[0]!, ppid, pgrp, startTicks };
}

export function readProcStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Start ticks of a process, or null if it is gone or /proc is unavailable. */
export function readStartTicks(pid: number): number | null {
  return readProcStat(pid)?.startTicks ?? null;
}

/** The process with this pid exists, is not a zombie and (if given) started at `startTicks`. */
export function isLive(pid: number, startTicks?: number): boolean {
  const stat = readProcStat(pid);
  if (stat === null || stat.state === 'Z') return false;
  return startTicks === undefined || stat.startTicks === startTicks;
}

/** Every pid in /proc (processes come and go while the caller reads them). Empty without /proc. */
function procPids(): number[] {
  try {
    return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).map(Number);
  } catch {
    return [];
  }
}

/** Live (non-zombie) processes whose process group is `pgid`. Empty without /proc. */
export function groupMembers(pgid: number): number[] {
  return procPids().filter((pid) => {
    const stat = readProcStat(pid);
    return stat !== null && stat.pgrp === pgid && stat.state !== 'Z';
  });
}

/**
 * Sends `signal` to every process of group `pgid`. Returns false if the group no longer exists.
 * Callers must only pass a pgid that cannot have been reused: one whose leader is alive and
 * known to be ours, or one that still has members (Linux does not hand out a pid that is still
 * some group's id).
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if (isErrno(err, 'ESRCH')) return false;
    throw err;
  }
}

/** SIGKILLs what is left of a group whose leader has already exited. */
export function killGroupRemnants(pgid: number): number {
  const members = groupMembers(pgid);
  if (members.length > 0) signalGroup(pgid, 'SIGKILL');
  return members.length;
}

export async function pollUntil(condition: () => boolean, timeoutMs: number, intervalMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export type OrphanOutcome = 'not-ours' | 'killed';

/**
 * Terminates a process that is not our child (left from a previous edgecore) and its group:
 * SIGTERM, then SIGKILL after `graceMs`. Does nothing unless the pid is live with exactly
 * `startTicks` (otherwise the pid now belongs to someone else).
 */
export async function terminateOrphanGroup(pid: number, startTicks: number, graceMs: number): Promise<OrphanOutcome> {
  const stat = readProcStat(pid);
  if (stat === null || stat.state === 'Z' || stat.startTicks !== startTicks) return 'not-ours';
  // A workload that moved itself to another group is signalled alone; its old group id is ours.
  const ownGroup = stat.pgrp === pid;
  const send = (signal: NodeJS.Signals): void => {
    if (ownGroup) signalGroup(pid, signal);
    else if (isLive(pid, startTicks)) process.kill(pid, signal);
  };
  send('SIGTERM');
  await pollUntil(() => !isLive(pid, startTicks), graceMs);
  if (isLive(pid, startTicks)) send('SIGKILL');
  else if (ownGroup) killGroupRemnants(pid);
  await pollUntil(() => !isLive(pid, startTicks), graceMs);
  return 'killed';
}

/** Live (non-zombie) processes whose real uid is `uid`. Empty without /proc. */
export function processesOfUser(uid: number): number[] {
  return procPids().filter((pid) => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      return !/^State:\s+Z/m.test(status) && Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) === uid;
    } catch {
      return false; // gone meanwhile
    }
  });
}

/**
 * SIGKILLs every process of `uid`: for a uid that belongs to one workload alone, that is all it
 * started, including what left its process group with setsid. A few rounds catch processes
 * forked while the previous round ran. Returns how many were signalled.
 */
export function killUserProcesses(uid: number): number {
  if (uid === 0 || uid === process.getuid?.()) throw new Error(`refusing to kill every process of uid ${uid}`);
  let signalled = 0;
  for (let round = 0; round < 5; round++) {
    const pids = processesOfUser(uid);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        signalled++;
      } catch { /* gone meanwhile */ }
    }
  }
  return signalled;
}
