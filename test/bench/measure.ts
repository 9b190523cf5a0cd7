import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LinkStats } from '../../edgecore/link/cloudLink.js';
import {
  idleFigures, perNode, statsDelta, summarizeLatencies, sumStats, totalTally, wireDelta,
  type IdleFigures, type LatencySummary,
} from './figures.js';
import { awaitTemplateEverywhere, type SimulatedEdge } from './fleet.js';
import { procDelta, round, sampleProcess, sampleSelf, type ProcDelta, type ProcSample } from './procStats.js';
import { wireSnapshot, type WireTotals } from './wireCounters.js';

/** The measured phases: one fan-out step (create or update of the app) and the idle window. */

export interface Probe {
  cloudPid: number;
  /** Date.now() when cloudcore was spawned, to place steps on its CPU profile's time axis. */
  cloudSpawnedAt: number;
  clockTicks: number;
  edges: SimulatedEdge[];
}

interface Snapshot {
  stats: LinkStats;
  wire: WireTotals;
  cloud: ProcSample;
  self: ProcSample;
  foreignObjects: number;
}

function snapshot(p: Probe): Snapshot {
  return {
    stats: sumStats(p.edges.map((e) => e.link.stats)),
    wire: wireSnapshot(),
    cloud: sampleProcess(p.cloudPid, p.clockTicks),
    self: sampleSelf(),
    foreignObjects: p.edges.reduce((sum, e) => sum + e.state.foreignObjects, 0),
  };
}

/**
 * Waits until cloudcore has been nearly idle (< `maxPercent` of one core) for one whole second,
 * so background work from the previous phase (status writes, scheduler passes) does not leak
 * into the next measurement. Gives up after `maxMs` and says so in the result.
 */
export async function settleCloud(p: Probe, maxPercent = 10, maxMs = 60_000): Promise<{ ms: number; settled: boolean }> {
  const start = performance.now();
  let previous = sampleProcess(p.cloudPid, p.clockTicks);
  while (performance.now() - start < maxMs) {
    await sleep(1000);
    const now = sampleProcess(p.cloudPid, p.clockTicks);
    const busy = procDelta(previous, now).cpuPercentOfOneCore;
    previous = now;
    if (busy < maxPercent) return { ms: Math.round(performance.now() - start), settled: true };
  }
  return { ms: Math.round(performance.now() - start), settled: false };
}

export interface TrafficPerNode {
  /** cloud → edge sync frames and their JSON payload bytes. */
  syncFramesIn: number;
  syncBytesIn: number;
  /** edge → cloud ack frames and their payload bytes. */
  ackFramesOut: number;
  ackBytesOut: number;
  /** All frames (heartbeats included) in the window, both directions. */
  framesIn: number;
  framesOut: number;
  /** Application bytes as CloudLink counted them (JSON text). */
  appBytesIn: number;
  appBytesOut: number;
  /** Exact RFC 6455 header bytes of the counted frames, both directions. */
  wsHeaderBytes: number;
  /** Kernel socket counters, both directions (payload of TCP, headers excluded). */
  tcpPayloadBytes: number;
  /** Workloads of other nodes that reached this one (must be 0). */
  foreignObjects: number;
}

function trafficPerNode(before: Snapshot, after: Snapshot, nodes: number): TrafficPerNode {
  const wire = wireDelta(before.wire, after.wire);
  const stats = statsDelta(before.stats, after.stats);
  const inAll = perNode(totalTally(wire.in), nodes);
  const outAll = perNode(totalTally(wire.out), nodes);
  const r = (x: number) => round(x, 2);
  return {
    syncFramesIn: r((wire.in.sync?.frames ?? 0) / nodes),
    syncBytesIn: r((wire.in.sync?.payloadBytes ?? 0) / nodes),
    ackFramesOut: r((wire.out.ack?.frames ?? 0) / nodes),
    ackBytesOut: r((wire.out.ack?.payloadBytes ?? 0) / nodes),
    framesIn: r(inAll.frames),
    framesOut: r(outAll.frames),
    appBytesIn: r(stats.bytesIn / nodes),
    appBytesOut: r(stats.bytesOut / nodes),
    wsHeaderBytes: r(inAll.headerBytes + outAll.headerBytes),
    tcpPayloadBytes: r((wire.socketBytesRead + wire.socketBytesWritten) / nodes),
    foreignObjects: r((after.foreignObjects - before.foreignObjects) / nodes),
  };
}

export interface StepResult {
  step: string;
  /** When the step started and ended, in ms since cloudcore was spawned (CPU-profile time axis). */
  cloudWindowMs: [number, number];
  /** Round trip of the REST call (POST or PUT) that started the step. */
  restMs: number;
  /** From just before the REST call until the last edge applied and acked. */
  allAckedMs: number;
  ackLatencyMs: LatencySummary;
  /** Traffic until the last edge acked. */
  atAllAcked: TrafficPerNode;
  /** Traffic until cloudcore went quiet again (catches frames that trail the last ack). */
  untilQuiet: TrafficPerNode;
  quietAfterMs: number;
  cloudSettled: boolean;
  reconnects: number;
  cloud: ProcDelta;
  bench: ProcDelta;
}

/** Runs `trigger` (the REST call) and waits until every edge holds `marker` for `app`. */
export async function measureFanoutStep(
  p: Probe, step: string, app: string, marker: string, timeoutMs: number, trigger: () => Promise<unknown>,
): Promise<StepResult> {
  const n = p.edges.length;
  const before = snapshot(p);
  const startedAt = Date.now();
  const t0 = performance.now();
  const acked = awaitTemplateEverywhere(p.edges, app, marker, t0, timeoutMs);
  await trigger();
  const restMs = performance.now() - t0;
  const latencies = await acked;
  const allAckedMs = performance.now() - t0;
  const atAcked = snapshot(p);
  const quiet = await settleCloud(p);
  const afterQuiet = snapshot(p);
  const lat = summarizeLatencies(latencies);
  return {
    step,
    cloudWindowMs: [startedAt - p.cloudSpawnedAt, afterQuiet.cloud.at - p.cloudSpawnedAt],
    restMs: round(restMs, 1),
    allAckedMs: round(allAckedMs, 1),
    ackLatencyMs: { count: lat.count, min: round(lat.min, 1), p50: round(lat.p50, 1), p90: round(lat.p90, 1), p99: round(lat.p99, 1), max: round(lat.max, 1) },
    atAllAcked: trafficPerNode(before, atAcked, n),
    untilQuiet: trafficPerNode(before, afterQuiet, n),
    quietAfterMs: Math.round(afterQuiet.cloud.at - atAcked.cloud.at),
    cloudSettled: quiet.settled,
    reconnects: afterQuiet.stats.connects - before.stats.connects,
    cloud: procDelta(before.cloud, atAcked.cloud),
    bench: procDelta(before.self, atAcked.self),
  };
}

export interface IdleResult extends IdleFigures {
  /** The window in ms since cloudcore was spawned (CPU-profile time axis). */
  cloudWindowMs: [number, number];
  reconnects: number;
  cloud: ProcDelta;
  bench: ProcDelta;
  /** Links not `connected` at the end of the window. */
  linksDown: number;
}

export async function measureIdle(p: Probe, seconds: number, heartbeatSeconds: number): Promise<IdleResult> {
  const before = snapshot(p);
  await sleep(seconds * 1000);
  const after = snapshot(p);
  const elapsed = (after.cloud.at - before.cloud.at) / 1000;
  const figures = idleFigures(p.edges.length, elapsed, heartbeatSeconds, statsDelta(before.stats, after.stats), wireDelta(before.wire, after.wire));
  const rounded = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, round(v, 4)])) as unknown as IdleFigures;
  return {
    ...rounded,
    cloudWindowMs: [before.cloud.at - p.cloudSpawnedAt, after.cloud.at - p.cloudSpawnedAt],
    reconnects: after.stats.connects - before.stats.connects,
    cloud: procDelta(before.cloud, after.cloud),
    bench: procDelta(before.self, after.self),
    linksDown: p.edges.filter((e) => e.link.phase !== 'connected').length,
  };
}
