import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LinkStats } from '../../../edgecore/link/cloudLink.js';
import { idleFigures, statsDelta, summarizeLatencies, sumStats, wireDelta, type IdleFigures, type LatencySummary } from '../figures.js';
import { procDelta, round, sampleProcess, type ProcDelta, type ProcSample } from '../procStats.js';
import type { FrameTally, WireTotals } from '../wireCounters.js';
import { etcdStep, sampleEtcd, type EtcdSample, type EtcdStepFigures } from './etcdStats.js';
import { CollectResultSchema, WorkerSampleSchema, type WorkerSample } from './ipc.js';
import type { ControlPlane } from './replicas.js';
import { everyWorker, type EdgeWorker } from './workerPool.js';
import { z } from 'zod';

/**
 * Fleet-wide measurement across processes: the workers' edges (summed), each replica's and each
 * etcd member's /proc figures, and the fan-out step (one REST call, then every edge in every
 * worker holding the change).
 */

export interface Fleet {
  workers: EdgeWorker[];
  plane: ControlPlane;
  clockTicks: number;
  nodes: number;
}

export interface FleetSnapshot {
  at: number;
  workers: WorkerSample[];
  /** Per replica, in replica order; null once it is dead. */
  replicas: (ProcSample | null)[];
  etcd: EtcdSample | null;
}

const now = () => performance.timeOrigin + performance.now();

function tryProc(pid: number, clockTicks: number): ProcSample | null {
  try {
    return sampleProcess(pid, clockTicks);
  } catch {
    return null;
  }
}

export async function fleetSnapshot(f: Fleet): Promise<FleetSnapshot> {
  const [workers, etcd] = await Promise.all([
    everyWorker(f.workers, { type: 'sample' }, WorkerSampleSchema),
    f.plane.etcd ? sampleEtcd(f.plane.etcd, f.clockTicks) : Promise.resolve(null),
  ]);
  const replicas = f.plane.replicas.map((r) => (r.killedAt === null ? tryProc(r.child.pid, f.clockTicks) : null));
  return { at: Date.now(), workers, replicas, etcd };
}

function addTallies(into: Record<string, FrameTally>, from: Record<string, FrameTally>): void {
  for (const [type, t] of Object.entries(from)) {
    const e = into[type] ?? (into[type] = { frames: 0, payloadBytes: 0, headerBytes: 0 });
    e.frames += t.frames;
    e.payloadBytes += t.payloadBytes;
    e.headerBytes += t.headerBytes;
  }
}

export function fleetTotals(s: FleetSnapshot): { stats: LinkStats; wire: WireTotals; foreignObjects: number; connectedByReplica: number[]; workersCpuSeconds: number; workersRssBytes: number } {
  const wire: WireTotals = { out: {}, in: {}, socketBytesWritten: 0, socketBytesRead: 0 };
  const connectedByReplica: number[] = [];
  for (const w of s.workers) {
    addTallies(wire.out, w.wire.out);
    addTallies(wire.in, w.wire.in);
    wire.socketBytesWritten += w.wire.socketBytesWritten;
    wire.socketBytesRead += w.wire.socketBytesRead;
    w.connectedByReplica.forEach((n, i) => { connectedByReplica[i] = (connectedByReplica[i] ?? 0) + n; });
  }
  return {
    stats: sumStats(s.workers.map((w) => w.stats)),
    wire,
    foreignObjects: s.workers.reduce((a, w) => a + w.foreignObjects, 0),
    connectedByReplica,
    workersCpuSeconds: s.workers.reduce((a, w) => a + w.self.cpuSeconds, 0),
    workersRssBytes: s.workers.reduce((a, w) => a + w.self.rssBytes, 0),
  };
}

export interface ReplicaFigures extends ProcDelta { id: string }

function replicaDeltas(f: Fleet, before: FleetSnapshot, after: FleetSnapshot): ReplicaFigures[] {
  return f.plane.replicas.flatMap((r, i) => {
    const [a, b] = [before.replicas[i], after.replicas[i]];
    return a && b ? [{ id: r.id, ...procDelta(a, b) }] : [];
  });
}

/**
 * Waits until the control plane has been nearly idle for one whole second, so the previous
 * phase's background work does not leak into the next: every live replica under 10 % of one
 * core plus 1 % per 1,000 sessions it holds (heartbeats alone cost that much), every etcd member
 * under 15 % (lease keepalives and the replicas' liveness writes never stop). Gives up after
 * `maxMs` and says so.
 */
export async function settle(f: Fleet, maxMs = 60_000): Promise<{ ms: number; settled: boolean }> {
  const alive = f.plane.alive();
  const replicaLimit = 10 + f.nodes / Math.max(1, alive.length) / 1000;
  const limits = new Map<number, number>([
    ...alive.map((r) => [r.child.pid, replicaLimit] as const),
    ...(f.plane.etcd?.members.flatMap((m) => (m.process?.pid ? [[m.process.pid, 15] as const] : [])) ?? []),
  ]);
  const start = performance.now();
  const sampleAll = () => new Map([...limits.keys()].flatMap((pid) => { const s = tryProc(pid, f.clockTicks); return s ? [[pid, s] as const] : []; }));
  let previous = sampleAll();
  while (performance.now() - start < maxMs) {
    await sleep(1000);
    const current = sampleAll();
    const busy = [...current].some(([pid, s]) => {
      const p = previous.get(pid);
      return p !== undefined && procDelta(p, s).cpuPercentOfOneCore >= limits.get(pid)!;
    });
    previous = current;
    if (!busy) return { ms: Math.round(performance.now() - start), settled: true };
  }
  return { ms: Math.round(performance.now() - start), settled: false };
}

export interface StepTraffic {
  syncFramesIn: number;
  syncBytesIn: number;
  ackFramesOut: number;
  tcpPayloadBytes: number;
  foreignObjects: number;
}

function traffic(before: FleetSnapshot, after: FleetSnapshot, nodes: number): StepTraffic {
  const [b, a] = [fleetTotals(before), fleetTotals(after)];
  const wire = wireDelta(b.wire, a.wire);
  const r = (x: number) => round(x / nodes, 2);
  return {
    syncFramesIn: r(wire.in.sync?.frames ?? 0),
    syncBytesIn: r(wire.in.sync?.payloadBytes ?? 0),
    ackFramesOut: r(wire.out.ack?.frames ?? 0),
    tcpPayloadBytes: r(wire.socketBytesRead + wire.socketBytesWritten),
    foreignObjects: r(a.foreignObjects - b.foreignObjects),
  };
}

export interface ScaleStepResult {
  step: string;
  restMs: number;
  /** From just before the REST call until the last edge (any worker) held the change. */
  allAckedMs: number;
  ackLatencyMs: LatencySummary;
  untilQuiet: StepTraffic;
  quietAfterMs: number;
  cloudSettled: boolean;
  reconnects: number;
  /** Each replica from the REST call to the last ack. */
  replicas: ReplicaFigures[];
  /** etcd from the REST call to the last ack (the write rate the fan-out drove), and until quiet. */
  etcdAtAllAcked: EtcdStepFigures | null;
  etcdUntilQuiet: EtcdStepFigures | null;
  workersCpuSeconds: number;
}

let waitCounter = 0;

/** Arms a marker wait in every worker; `collect` resolves with latencies from `t0` (ms). */
export async function armMarker(f: Fleet, app: string, marker: string, timeoutMs: number): Promise<(t0: number) => Promise<number[]>> {
  const waitId = `w${++waitCounter}`;
  await everyWorker(f.workers, { type: 'arm', waitId, app, marker, timeoutMs }, z.object({}));
  return async (t0) => {
    const all = await everyWorker(f.workers, { type: 'collect', waitId }, CollectResultSchema);
    return all.flatMap((r) => r.ackedAt.map((at) => at - t0));
  };
}

/** The largest value; spreading 100,000 latencies into Math.max would overflow the call stack. */
export function maxOf(values: readonly number[]): number {
  return values.reduce((a, b) => (b > a ? b : a), Number.NEGATIVE_INFINITY);
}

export function latencySummary(latencies: number[]): LatencySummary {
  const l = summarizeLatencies(latencies);
  return { count: l.count, min: round(l.min, 1), p50: round(l.p50, 1), p90: round(l.p90, 1), p99: round(l.p99, 1), max: round(l.max, 1) };
}

export async function measureStep(f: Fleet, step: string, app: string, marker: string, timeoutMs: number, trigger: () => Promise<unknown>): Promise<ScaleStepResult> {
  const collect = await armMarker(f, app, marker, timeoutMs);
  const before = await fleetSnapshot(f);
  const t0 = now();
  await trigger();
  const restMs = now() - t0;
  const latencies = await collect(t0);
  const allAckedMs = maxOf(latencies);
  const atAcked = await fleetSnapshot(f);
  const quiet = await settle(f);
  const afterQuiet = await fleetSnapshot(f);
  const [b, a] = [fleetTotals(before), fleetTotals(afterQuiet)];
  return {
    step,
    restMs: round(restMs, 1),
    allAckedMs: round(allAckedMs, 1),
    ackLatencyMs: latencySummary(latencies),
    untilQuiet: traffic(before, afterQuiet, f.nodes),
    quietAfterMs: afterQuiet.at - atAcked.at,
    cloudSettled: quiet.settled,
    reconnects: a.stats.connects - b.stats.connects,
    replicas: replicaDeltas(f, before, atAcked),
    etcdAtAllAcked: before.etcd && atAcked.etcd ? etcdStep(before.etcd, atAcked.etcd) : null,
    etcdUntilQuiet: before.etcd && afterQuiet.etcd ? etcdStep(before.etcd, afterQuiet.etcd) : null,
    workersCpuSeconds: round(fleetTotals(atAcked).workersCpuSeconds - b.workersCpuSeconds, 2),
  };
}

export interface ScaleIdleResult extends IdleFigures {
  reconnects: number;
  linksDown: number;
  replicas: ReplicaFigures[];
  etcd: EtcdStepFigures | null;
  workersCpuSeconds: number;
}

export async function measureIdle(f: Fleet, seconds: number, heartbeatSeconds: number): Promise<ScaleIdleResult> {
  const before = await fleetSnapshot(f);
  await sleep(seconds * 1000);
  const after = await fleetSnapshot(f);
  const [b, a] = [fleetTotals(before), fleetTotals(after)];
  const elapsed = (after.at - before.at) / 1000;
  const figures = idleFigures(f.nodes, elapsed, heartbeatSeconds, statsDelta(b.stats, a.stats), wireDelta(b.wire, a.wire));
  const rounded = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, round(v, 4)])) as unknown as IdleFigures;
  return {
    ...rounded,
    reconnects: a.stats.connects - b.stats.connects,
    linksDown: f.nodes - a.connectedByReplica.reduce((x, y) => x + y, 0),
    replicas: replicaDeltas(f, before, after),
    etcd: before.etcd && after.etcd ? etcdStep(before.etcd, after.etcd) : null,
    workersCpuSeconds: round(a.workersCpuSeconds - b.workersCpuSeconds, 2),
  };
}
