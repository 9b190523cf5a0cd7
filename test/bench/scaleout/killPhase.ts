import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LatencySummary } from '../figures.js';
import { ApiClient, ApiRefusedError } from '../fleet.js';
import { round } from '../procStats.js';
import { MoveResultSchema } from './ipc.js';
import { armMarker, latencySummary, maxOf, type Fleet } from './probe.js';
import { promSum } from './promText.js';
import type { Replica } from './replicas.js';
import { everyWorker } from './workerPool.js';

/**
 * A replica dies (SIGKILL) with its edges connected: its edges reconnect to the surviving
 * replicas (what an edge with several cloud URLs does; the benchmark moves them itself, at once,
 * round-robin) and the app changes right after the kill. Killing the leader also measures the
 * election: the time until a survivor logs 'elected leader', and until the change (a new app,
 * which only the leader's scheduler can bind) reaches every node.
 */

export type KillTarget = 'follower' | 'leader';

export interface KillResult {
  target: KillTarget;
  killed: string;
  sessionsMoved: number;
  /** Leader kill: the survivor that logged 'elected leader' after the kill, and when. */
  newLeader: string | null;
  electedAfterMs: number | null;
  /** How the election was seen: the replica's 'elected leader' log line or the edgefleet_replica_leader gauge. */
  electedSeenBy: 'log' | 'gauge' | null;
  /** From the kill until each moved edge was welcomed by a survivor. */
  resumeLatencyMs: LatencySummary | null;
  allResumedMs: number | null;
  /** Welcomes of the moved edges by mode (resume: from the edge's revision, no snapshot). */
  resumes: number;
  snapshots: number;
  notWelcomed: number;
  /** Snapshots the survivors sent during the phase (edgefleet_hub_snapshots_total). */
  cloudSnapshots: number | null;
  /** The change made right after the kill: a PUT of the app (follower) or a new app (leader); null with --kill-change no. */
  change: string | null;
  changeRestMs: number | null;
  changeAttempts: number | null;
  /** From the kill until every node (moved or not) held the change. */
  allAckedMs: number | null;
  ackLatencyMs: LatencySummary | null;
  sessionsAfter: (number | null)[];
}

export interface KillOptions {
  target: KillTarget;
  app: string;
  marker: string;
  template: (marker: string) => unknown;
  /** Change the app right after the kill and wait until every node holds it. */
  change: boolean;
  timeoutMs: number;
  log: (line: string) => void;
}

async function snapshotsOf(f: Fleet, replicas: Replica[]): Promise<number | null> {
  try {
    const all = await Promise.all(replicas.map(async (r) => promSum(await f.plane.metrics(r), 'edgefleet_hub_snapshots_total') ?? 0));
    return all.reduce((a, b) => a + b, 0);
  } catch {
    return null;
  }
}

/** Retries a REST write through the leaderless window (5xx, refused connections) until `deadline`. */
async function writeThrough(api: ApiClient, deadline: number, call: (api: ApiClient) => Promise<unknown>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await call(api);
      return attempt;
    } catch (err) {
      if (err instanceof ApiRefusedError || Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/**
 * The log line's own timestamp is the election time; the edgefleet_replica_leader gauge (if replicas
 * export it) is only a fallback, timed by when the poll saw it.
 */
async function waitElected(f: Fleet, survivors: Replica[], since: number, deadline: number): Promise<{ replica: Replica; at: number; by: 'log' | 'gauge' } | null> {
  for (let round = 0; Date.now() < deadline; round++) {
    for (const r of survivors) {
      const at = f.plane.electedAt(r).find((t) => t >= since);
      if (at !== undefined) return { replica: r, at, by: 'log' };
    }
    if (round % 4 === 3) {
      const byGauge = await f.plane.leaderByGauge(survivors);
      if (byGauge) return { replica: byGauge, at: Date.now(), by: 'gauge' };
    }
    await sleep(50);
  }
  return null;
}

export async function killReplica(f: Fleet, o: KillOptions): Promise<KillResult> {
  const leader = await f.plane.leader();
  const alive = f.plane.alive();
  const victim = o.target === 'leader' ? leader : [...alive].reverse().find((r) => r !== leader);
  if (!victim) throw new Error(o.target === 'leader' ? 'no replica has logged "elected leader"' : 'no live replica besides the leader');
  const survivors = alive.filter((r) => r !== victim);
  if (survivors.length === 0) throw new Error('killing the only replica leaves no survivor');
  const deadline = Date.now() + o.timeoutMs;
  const api = new ApiClient(survivors[0]!.child.url, survivors[0]!.child.adminToken);
  const collect = o.change ? await armMarker(f, o.app, o.marker, o.timeoutMs) : undefined;
  const snapshots0 = await snapshotsOf(f, survivors);

  o.log(`killing ${o.target} replica ${victim.id} (SIGKILL)`);
  const t0 = performance.timeOrigin + performance.now();
  const killedAt = await f.plane.kill(victim);
  const moving = everyWorker(f.workers, { type: 'move', from: victim.index, to: survivors.map((r) => r.index), timeoutMs: o.timeoutMs }, MoveResultSchema);
  const elected = o.target === 'leader' ? waitElected(f, survivors, killedAt, deadline) : Promise.resolve(null);
  // Every node at once (as the outage phase does): the phase measures the failover and the links'
  // recovery, not a rollout's pacing.
  const body = { metadata: { name: o.app }, spec: { selector: {}, template: o.template(o.marker), strategy: { type: 'rolling', maxUnavailable: '100%' } } };
  const change = o.change ? (o.target === 'leader' ? `POST /apps ${o.app}` : `PUT /apps/${o.app}`) : null;
  const restStart = performance.now();
  const changeAttempts = o.change
    ? await writeThrough(api, deadline, (a) => (o.target === 'leader' ? a.request('POST', '/apps', body) : a.request('PUT', `/apps/${o.app}`, body)))
    : null;
  const changeRestMs = o.change ? performance.now() - restStart : null;
  const [moves, election, latencies] = await Promise.all([moving, elected, collect ? collect(t0) : Promise.resolve(null)]);
  const welcomedAt = moves.flatMap((m) => m.welcomedAt.map((at) => at - t0));
  const snapshots1 = await snapshotsOf(f, survivors);
  const sessionsAfter = await f.plane.sessionsByReplica();
  const sum = (pick: (m: (typeof moves)[number]) => number) => moves.reduce((a, m) => a + pick(m), 0);
  return {
    target: o.target,
    killed: victim.id,
    sessionsMoved: sum((m) => m.moved),
    newLeader: election?.replica.id ?? null,
    electedAfterMs: election ? election.at - killedAt : null,
    electedSeenBy: election?.by ?? null,
    resumeLatencyMs: welcomedAt.length > 0 ? latencySummary(welcomedAt) : null,
    allResumedMs: welcomedAt.length > 0 ? round(maxOf(welcomedAt), 1) : null,
    resumes: sum((m) => m.resumes),
    snapshots: sum((m) => m.snapshots),
    notWelcomed: sum((m) => m.notWelcomed),
    cloudSnapshots: snapshots0 !== null && snapshots1 !== null ? snapshots1 - snapshots0 : null,
    change,
    changeRestMs: changeRestMs === null ? null : round(changeRestMs, 1),
    changeAttempts,
    allAckedMs: latencies ? round(maxOf(latencies), 1) : null,
    ackLatencyMs: latencies ? latencySummary(latencies) : null,
    sessionsAfter,
  };
}
