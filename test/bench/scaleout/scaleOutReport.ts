import type { LatencySummary } from '../figures.js';
import type { ProcDelta } from '../procStats.js';
import type { EtcdStepFigures } from './etcdStats.js';
import type { KillResult } from './killPhase.js';
import type { ReplicaFigures, ScaleIdleResult, ScaleStepResult } from './probe.js';

/** Everything one scale-out run measured; printed as a summary and as one JSON line. */
export interface ScaleOutReport {
  bench: 'fanout-scaleout';
  store: 'sqlite' | 'etcd';
  replicas: number;
  workers: number;
  nodes: number;
  heartbeatSeconds: number;
  node: string;
  cpus: number;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  etcdArgs: string[] | null;
  replicaArgs: string[] | null;
  setup: {
    /** Token mints and joins, all workers in parallel, wall clock. */
    joinWallMs: number;
    /** The slowest worker's token mints, then its joins. */
    mintMs: number;
    joinMs: number;
    /** Every link connected and snapshotted, wall clock. */
    connectWallMs: number;
    settleMs: number;
    settled: boolean;
    /** edgefleet_hub_sessions of each replica once every link was up. */
    sessionsByReplica: (number | null)[];
    leader: string | null;
    workersCpuSeconds: number;
    replicaCpuSeconds: number[];
    replicaRssMiB: number[];
    /** etcd over the joins and connects. */
    etcd: EtcdStepFigures | null;
  };
  create: ScaleStepResult;
  /** Null with --update no. */
  update: ScaleStepResult | null;
  idle: ScaleIdleResult | null;
  kills: KillResult[];
  end: { replicaRssMiB: (number | null)[]; etcdRssMiB: (number | null)[]; etcdDbMiB: (number | null)[]; workersRssMiB: number[] };
  /** Anything that makes the figures suspect. */
  warnings: string[];
}

export function scaleOutWarnings(r: Omit<ScaleOutReport, 'warnings'>): string[] {
  const w: string[] = [];
  if (!r.setup.settled) w.push('the replicas or etcd did not go quiet after setup; the first step starts on a busy control plane');
  const expected = Math.ceil(r.nodes / r.replicas);
  r.setup.sessionsByReplica.forEach((n, i) => {
    if (n !== null && Math.abs(n - expected) > 1) w.push(`replica ${i} held ${n} sessions after setup, ${expected} expected (round-robin)`);
  });
  for (const step of r.update ? [r.create, r.update] : [r.create]) {
    if (step.untilQuiet.foreignObjects > 0) w.push(`${step.step}: edges received workloads bound to OTHER nodes: node authorization / watch filtering is broken`);
    if (step.reconnects > 0) w.push(`${step.step}: ${step.reconnects} links reconnected`);
    if (!step.cloudSettled) w.push(`${step.step}: the control plane was still busy 60 s after the last ack`);
  }
  if (r.idle && r.idle.seconds < 2 * r.heartbeatSeconds) {
    w.push(`idle: the window (${r.idle.seconds.toFixed(0)} s) is shorter than two heartbeat periods (${2 * r.heartbeatSeconds} s); idle rates are quantized by where the pings fall`);
  }
  if (r.idle && (r.idle.reconnects > 0 || r.idle.linksDown > 0)) w.push(`idle: ${r.idle.reconnects} reconnects, ${r.idle.linksDown} links down`);
  for (const k of r.kills) {
    if (k.notWelcomed > 0) w.push(`kill of ${k.killed}: ${k.notWelcomed} moved edges never welcomed`);
    if (k.snapshots > 0) w.push(`kill of ${k.killed}: ${k.snapshots} moved edges got a snapshot instead of a resume`);
    if (k.target === 'leader' && k.newLeader === null) w.push(`kill of ${k.killed}: no survivor logged 'elected leader'`);
  }
  return w;
}

const fmt = (x: number, digits = 1) => x.toFixed(digits);
const s = (ms: number) => `${fmt(ms / 1000, 2)} s`;
const lat = (l: LatencySummary) => `min ${s(l.min)} / p50 ${s(l.p50)} / p90 ${s(l.p90)} / p99 ${s(l.p99)} / max ${s(l.max)}`;

function procLine(label: string, d: ProcDelta): string {
  return `${label}: RSS ${fmt(d.rssBeforeMiB)} → ${fmt(d.rssAfterMiB)} MiB, CPU ${fmt(d.cpuSeconds, 2)} s (${fmt(d.cpuPercentOfOneCore)} % of one core)`;
}

function replicaLines(indent: string, replicas: ReplicaFigures[]): string[] {
  return replicas.map((r) => `${indent}${procLine(`cloudcore ${r.id}`, r)}`);
}

function etcdLines(indent: string, label: string, e: EtcdStepFigures | null): string[] {
  if (!e) return [];
  return [
    `${indent}etcd ${label} (${fmt(e.seconds)} s): ${fmt(e.putsPerSecond, 0)} puts/s, ${fmt(e.txnsPerSecond, 0)} txns/s, `
      + `${fmt(e.deletesPerSecond, 0)} deletes/s, ${fmt(e.proposalsCommittedPerSecond, 0)} raft proposals committed/s `
      + `(${e.puts} puts, ${e.proposalsCommitted} proposals); db ${fmt(e.dbMiBAfter)} MiB, ${e.keysAfter} keys`,
    ...e.members.map((m) => `${indent}  ${procLine(`etcd ${m.name}`, m)}`),
  ];
}

function stepLines(r: ScaleStepResult): string[] {
  return [
    `  ${r.step}: REST call ${fmt(r.restMs)} ms; every node applied+acked after ${s(r.allAckedMs)}`,
    `    per-node ack latency ${lat(r.ackLatencyMs)}`,
    `    per node until quiet (+${r.quietAfterMs} ms${r.cloudSettled ? '' : ', NOT settled'}): sync frames in ${fmt(r.untilQuiet.syncFramesIn, 2)} `
      + `(${fmt(r.untilQuiet.syncBytesIn, 0)} B), acks out ${fmt(r.untilQuiet.ackFramesOut, 2)}, TCP payload ${fmt(r.untilQuiet.tcpPayloadBytes, 0)} B`,
    ...(r.untilQuiet.foreignObjects > 0 ? [`    !! ${r.untilQuiet.foreignObjects} workloads of OTHER nodes per node`] : []),
    ...replicaLines('    ', r.replicas),
    ...etcdLines('    ', 'until the last ack', r.etcdAtAllAcked),
    ...etcdLines('    ', 'until quiet', r.etcdUntilQuiet).slice(0, 1),
    `    edge workers: ${fmt(r.workersCpuSeconds, 2)} CPU s`,
    ...(r.reconnects > 0 ? [`    !! ${r.reconnects} link reconnects during this step`] : []),
  ];
}

function killLines(k: KillResult): string[] {
  return [
    `  SIGKILL of the ${k.target} replica ${k.killed}: ${k.sessionsMoved} sessions moved to the survivors`,
    ...(k.target === 'leader' ? [`    new leader: ${k.newLeader ?? 'NONE within the bound'}${k.electedAfterMs !== null ? ` after ${s(k.electedAfterMs)}` : ''}`] : []),
    `    moved edges welcomed: ${k.resumes} resumes, ${k.snapshots} snapshots, ${k.notWelcomed} not welcomed within the bound`
      + (k.allResumedMs !== null ? `; the last ${s(k.allResumedMs)} after the kill` : ''),
    ...(k.resumeLatencyMs ? [`    per moved edge, kill → welcome: ${lat(k.resumeLatencyMs)}`] : []),
    `    snapshots sent by the survivors during the phase: ${k.cloudSnapshots ?? 'unknown'}`,
    ...(k.change !== null && k.allAckedMs !== null && k.ackLatencyMs
      ? [`    ${k.change} right after the kill (${k.changeAttempts} attempt(s), ${fmt(k.changeRestMs ?? 0)} ms): every node held it ${s(k.allAckedMs)} after the kill`,
        `    per node, kill → change held: ${lat(k.ackLatencyMs)}`]
      : ['    no change made after the kill (--kill-change no)']),
    `    sessions per replica after: ${k.sessionsAfter.map((n) => n ?? 'dead').join(' / ')}`,
  ];
}

export function scaleOutSummary(r: ScaleOutReport): string {
  const i = r.idle;
  const lines = [
    `== EdgeFleet fan-out benchmark (scale-out): ${r.nodes} nodes, ${r.replicas} cloudcore replica(s) on ${r.store}, `
      + `${r.workers} edge worker(s), heartbeat ${r.heartbeatSeconds} s, node ${r.node}, ${r.cpus} CPUs`,
    `   load average at start ${r.loadAverageStart.join(' ')}, at end ${r.loadAverageEnd.join(' ')}`,
    ...(r.etcdArgs ? [`   etcd: 3 members, ${r.etcdArgs.join(' ')}; replicas: ${r.replicaArgs?.join(' ') ?? ''}`] : []),
    `setup: tokens + joins ${s(r.setup.joinWallMs)} (${s(r.setup.mintMs)} + ${s(r.setup.joinMs)}), links connected + snapshot ${s(r.setup.connectWallMs)}, settle ${s(r.setup.settleMs)}${r.setup.settled ? '' : ' (NOT settled)'}`,
    `  sessions per replica: ${r.setup.sessionsByReplica.map((n) => n ?? '?').join(' / ')}; leader ${r.setup.leader ?? '(none logged)'}`,
    `  CPU during setup: replicas ${r.setup.replicaCpuSeconds.map((c) => fmt(c)).join(' / ')} s, edge workers ${fmt(r.setup.workersCpuSeconds)} s; `
      + `replica RSS after ${r.setup.replicaRssMiB.map((m) => fmt(m, 0)).join(' / ')} MiB`,
    ...etcdLines('  ', 'during setup', r.setup.etcd),
    'fan-out of one app with an empty selector (binds to every node):',
    ...stepLines(r.create),
    ...(r.update ? stepLines(r.update) : ['  update: skipped (--update no)']),
  ];
  if (i) {
    lines.push(
      `idle for ${fmt(i.seconds)} s (heartbeats only), per node: frames ${fmt(i.framesPerNodePerMinute, 2)}/min, `
        + `${fmt(i.wsBytesPerNodePerMinute)} B/min with WebSocket framing = ${fmt(i.wsKbitPerSecondPerNode, 4)} kbit/s `
        + `(kernel socket counters ${fmt(i.tcpPayloadBytesPerNodePerMinute)} B/min; with TCP/IP headers ≈ ${fmt(i.estimatedIpKbitPerSecondPerNode, 4)} kbit/s)`,
      ...replicaLines('  ', i.replicas),
      ...etcdLines('  ', 'idle', i.etcd),
      `  edge workers: ${fmt(i.workersCpuSeconds, 2)} CPU s`,
      ...(i.reconnects > 0 || i.linksDown > 0 ? [`  !! ${i.reconnects} reconnects, ${i.linksDown} links down at the end`] : []),
    );
  }
  if (r.kills.length > 0) lines.push('replica kills:', ...r.kills.flatMap(killLines));
  lines.push(
    `after the idle window: replica RSS ${r.end.replicaRssMiB.map((m) => (m === null ? 'dead' : `${fmt(m)} MiB`)).join(' / ')}`
      + (r.end.etcdRssMiB.length > 0 ? `; etcd RSS ${r.end.etcdRssMiB.map((m) => (m === null ? '?' : `${fmt(m)} MiB`)).join(' / ')}, db ${r.end.etcdDbMiB.map((m) => m ?? '?').join(' / ')} MiB` : '')
      + `; workers RSS ${r.end.workersRssMiB.map((m) => fmt(m, 0)).join(' / ')} MiB`,
  );
  for (const w of r.warnings) lines.push(`WARNING: ${w}`);
  return lines.join('\n');
}
