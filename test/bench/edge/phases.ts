import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from '../fleet.js';
import { round } from '../procStats.js';
import { processApp } from './benchWorkloads.js';
import { EdgecoreChild, type EdgecoreChildOptions } from './edgecoreChild.js';
import { allRunning, coldStartLogTimes, reportedPids, runningPid, updateLogTimes } from './edgeStatus.js';
import type { PidLedger } from './pidLedger.js';
import { childrenMemory, MiB, sampleProcessMemory, type ProcessSample } from './procMemory.js';

/** The measured phases: idle footprint, desired-change latency, cold start without the cloud. */

function cpuPercent(a: ProcessSample, b: ProcessSample): number {
  const wall = Math.max((b.at - a.at) / 1000, 1e-3);
  return round(((b.cpuSeconds - a.cpuSeconds) / wall) * 100, 2);
}

/**
 * Waits until the process has used under `maxPercent` of a core for one whole second, so the
 * start-up work (module loading, JIT, first sync) does not count as idle. Gives up after `maxMs`.
 */
export async function settleProcess(pid: number, clockTicks: number, maxPercent = 3, maxMs = 20_000): Promise<{ ms: number; settled: boolean }> {
  const start = performance.now();
  let previous = sampleProcessMemory(pid, clockTicks);
  while (performance.now() - start < maxMs) {
    await sleep(1000);
    const now = sampleProcessMemory(pid, clockTicks);
    const busy = cpuPercent(previous, now);
    previous = now;
    if (busy < maxPercent) return { ms: Math.round(performance.now() - start), settled: true };
  }
  return { ms: Math.round(performance.now() - start), settled: false };
}

export interface IdleFigures {
  seconds: number;
  settled: boolean;
  settleMs: number;
  /** edgecore alone, percent of one core over the window. */
  cpuPercent: number;
  rssStartMiB: number;
  rssEndMiB: number;
  rssMeanMiB: number;
  rssMaxMiB: number;
  /** Split at the end of the window: anonymous (edgecore's own) vs file-backed (node's code, shared). */
  rssAnonEndMiB: number;
  rssFileEndMiB: number;
  peakRssMiB: number;
  threads: number;
  /** Direct children (the workloads): not edgecore's memory, reported apart. */
  children: { count: number; rssMiB: number; rssAnonMiB: number };
}

/** Samples edgecore once a second for `seconds` after it has settled. */
export async function measureIdle(pid: number, clockTicks: number, seconds: number): Promise<IdleFigures> {
  const settle = await settleProcess(pid, clockTicks);
  const samples: ProcessSample[] = [sampleProcessMemory(pid, clockTicks)];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    await sleep(Math.min(1000, Math.max(0, end - performance.now())));
    samples.push(sampleProcessMemory(pid, clockTicks));
  }
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const rss = samples.map((s) => s.memory.rssBytes);
  const kids = childrenMemory(pid);
  return {
    seconds: round((last.at - first.at) / 1000, 1),
    settled: settle.settled,
    settleMs: settle.ms,
    cpuPercent: cpuPercent(first, last),
    rssStartMiB: MiB(first.memory.rssBytes),
    rssEndMiB: MiB(last.memory.rssBytes),
    rssMeanMiB: MiB(rss.reduce((a, b) => a + b, 0) / rss.length),
    rssMaxMiB: MiB(Math.max(...rss)),
    rssAnonEndMiB: MiB(last.memory.rssAnonBytes),
    rssFileEndMiB: MiB(last.memory.rssFileBytes),
    peakRssMiB: MiB(last.memory.hwmBytes),
    threads: last.memory.threads,
    children: { count: kids.count, rssMiB: MiB(kids.rssBytes), rssAnonMiB: MiB(kids.rssAnonBytes) },
  };
}

/**
 * pino writes asynchronously (sonic-boom), so a line can reach the file a little after the
 * status API already shows its effect: re-read the log until `complete` or `maxMs` passed.
 */
async function settledLogs<T>(edge: EdgecoreChild, compute: (lines: ReturnType<EdgecoreChild['logLines']>) => T, complete: (t: T) => boolean, maxMs = 2000): Promise<T> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const result = compute(edge.logLines());
    if (complete(result) || performance.now() > deadline) return result;
    await sleep(20);
  }
}

export interface UpdateSample {
  generation: number;
  /** Round trip of the PUT. */
  putMs: number;
  /** PUT sent → edge status shows the new generation Running with a new pid (10 ms polls). */
  statusRunningMs: number;
  /** PUT sent → first edge log line about the workload (old process stopped, new one Pending). */
  edgeFirstLogMs: number | null;
  /** PUT sent → edge logged the new process Running. */
  edgeRunningLogMs: number | null;
  oldPid: number;
  newPid: number;
}

/**
 * One env change of `app` by PUT, timed until the edge runs the new generation. `ledger` is null
 * for containers: their pids belong to the engine, which cleans them up, not the benchmark.
 */
export async function measureUpdate(
  edge: EdgecoreChild, api: ApiClient, app: string, node: string, revision: number, ledger: PidLedger | null, timeoutMs: number,
  appBody: (revision: number) => object = (r) => processApp(app, node, r),
): Promise<UpdateSample> {
  const before = await edge.status();
  const oldPid = runningPid(before, app);
  const oldGeneration = before.workloads.find((w) => w.name === app)?.status?.generation ?? 0;
  if (oldPid === null) throw new Error(`${app} is not Running before the update`);
  const sentAt = Date.now();
  const t0 = performance.now();
  const put = api.request('PUT', `/apps/${app}`, appBody(revision)).then((body) => ({ body, at: performance.now() }));
  const seen = await edge.pollStatus((s) => {
    const w = s.workloads.find((x) => x.name === app);
    const pid = runningPid(s, app);
    return pid !== null && pid !== oldPid && (w?.status?.generation ?? 0) > oldGeneration;
  }, timeoutMs);
  const answered = await put;
  const generation = (answered.body as { metadata?: { generation?: number } }).metadata?.generation ?? -1;
  const newPid = runningPid(seen.status, app)!;
  ledger?.note([newPid]);
  const seenGeneration = seen.status.workloads.find((w) => w.name === app)?.status?.generation;
  if (seenGeneration !== generation) throw new Error(`edge runs generation ${seenGeneration}, the PUT made ${generation}`);
  const logs = await settledLogs(edge, (lines) => updateLogTimes(lines, app, sentAt, newPid), (t) => t.runningAt !== null);
  return {
    generation,
    putMs: round(answered.at - t0, 1),
    statusRunningMs: round(seen.at - t0, 1),
    edgeFirstLogMs: logs.firstLineAt === null ? null : logs.firstLineAt - sentAt,
    edgeRunningLogMs: logs.runningAt === null ? null : logs.runningAt - sentAt,
    oldPid,
    newPid,
  };
}

export interface ColdStartSample {
  /** Spawn → edgecore's first log line: node start-up, module loading, settings (pino times). */
  firstLogMs: number | null;
  /** Spawn → last orphan of the killed edgecore stopped. */
  orphansReapedLogMs: number | null;
  /** Spawn → first workload Running. */
  firstRunningLogMs: number | null;
  /** Spawn → `edgecore ready` (pino time of the line). */
  readyLogMs: number | null;
  /** Spawn → the status API shows every workload Running with a new pid (10 ms polls). */
  allRunningStatusMs: number;
  /** Spawn → the last `workload state` Running line. */
  lastRunningLogMs: number | null;
  statusPolls: number;
  /** Workloads of the killed edgecore alive when the new one was spawned / after it was up. */
  orphansAtSpawn: number;
  orphansLeft: number;
  orphansStoppedLogged: number;
  /** edgecore RSS when all workloads were Running (cloud unreachable). */
  rssAtAllRunningMiB: number;
}

/**
 * kill -9 the running edgecore (its workloads stay behind as orphans, as after a crash), spawn a
 * new one with the cloud unreachable, and time it until every workload runs again.
 */
export async function measureColdStart(
  previous: EdgecoreChild, spawnOpts: EdgecoreChildOptions, names: readonly string[], ledger: PidLedger, clockTicks: number, timeoutMs: number,
  /** Told about the new edgecore as soon as it exists, so a failed measurement still stops it. */
  onSpawn: (edge: EdgecoreChild) => void,
): Promise<ColdStartSample> {
  const stale = new Set(reportedPids(await previous.status()));
  ledger.note(stale);
  await previous.kill9();
  const orphansAtSpawn = ledger.alive(stale).length;
  const edge = EdgecoreChild.spawn(spawnOpts);
  onSpawn(edge);
  const seen = await edge.pollStatus((s) => allRunning(s, names, stale), timeoutMs);
  const rss = sampleProcessMemory(edge.pid, clockTicks).memory.rssBytes;
  ledger.note(reportedPids(seen.status));
  const ready = await edge.waitForLog('edgecore ready', timeoutMs);
  const logs = await settledLogs(edge, (lines) => coldStartLogTimes(lines, names), (t) => t.lastRunningAt !== null && t.orphansStopped >= orphansAtSpawn);
  const since = (at: number | null) => (at === null ? null : at - edge.spawnedAt);
  return {
    firstLogMs: since(logs.firstLineAt),
    orphansReapedLogMs: since(logs.orphansReapedAt),
    firstRunningLogMs: since(logs.firstRunningAt),
    readyLogMs: since(typeof ready.time === 'number' ? ready.time : null),
    allRunningStatusMs: round(seen.at - edge.spawnedPerf, 1),
    lastRunningLogMs: since(logs.lastRunningAt),
    statusPolls: seen.polls,
    orphansAtSpawn,
    orphansLeft: ledger.alive(stale).length,
    orphansStoppedLogged: logs.orphansStopped,
    rssAtAllRunningMiB: MiB(rss),
  };
}
