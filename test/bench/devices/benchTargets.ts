import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { round, sampleProcess } from '../procStats.js';
import { publisherAcks, receivingChild, runPhase, startLoaders, type PhaseConsumer, type PhaseExtras, type PhaseSpec } from './benchPhases.js';
import { ChildRpc } from './childRpc.js';
import type { PhaseResult, TargetResult } from './devicesReport.js';
import type { NodeRoute, MqttGrant } from '../../../protocol/index.js';
import type { ProcessGroup } from './machineLoad.js';
import { startMosquitto, type MosquittoProcess } from './mosquittoProcess.js';

/** One broker under the same client load: setup, the saturated and the paced phase, teardown. */

const HUB_MODULE = fileURLToPath(new URL('./hubChild.js', import.meta.url));
const SUBSCRIBER_MODULE = fileURLToPath(new URL('./subscriberChild.js', import.meta.url));

export interface RunSettings {
  dir: string;
  /** Where the hub's database (twins + outbox, one file) lives (a fresh temp dir; --db-dir picks its parent). */
  hubDbDir: string;
  devices: string[];
  devicesFile: string;
  password: string;
  t0Ms: number;
  loaders: number;
  /** Nice value of the loader processes (see startLoaders). */
  loaderNice: number;
  connectConcurrency: number;
  clockTicks: number;
  saturate: Omit<PhaseSpec, 'mode' | 'ratePerSecond'>;
  /** null skips the paced phase (its rate is the caller's to pick, see pacedPhase). */
  paced: Omit<PhaseSpec, 'mode' | 'ratePerSecond'> | null;
  subscriberQos: 0 | 1;
  hubCpuProfDir: string | null;
  /** Node flags of the hub child (e.g. --lite-mode, as the edgecore binary runs). */
  hubNodeFlags: string[];
  /** The hub's maxBatch (undefined: its default). */
  hubMaxBatch?: number;
  /** The hub's twinUpstreamIntervalMs (undefined: its default). */
  hubTwinUpstreamMs?: number;
  /** Issue 24: app credentials and a route the hub child sets up at start (localApps.ts). */
  hubExtras?: { apps?: { workloads: string[]; grant: MqttGrant }; route?: NodeRoute };
  log: (line: string) => void;
}

/** Every process and temp dir a run holds, released by pid whatever way the run ends. */
export class Resources {
  readonly children: ChildRpc[] = [];
  mosquitto: MosquittoProcess | null = null;
  /** More mosquittos (issue 24: a route's destination), stopped last. */
  readonly otherMosquittos: MosquittoProcess[] = [];
  /** Other processes the run started (the edgecore target's edgecore and cloudcore), stopped by pid after the children, in this order. */
  readonly processes: { name: string; stop: () => Promise<unknown> }[] = [];

  async releaseChildren(children: ChildRpc[]): Promise<void> {
    // Loaders first: their disconnects are cheap for a broker that is still up.
    const ordered = [...children].sort((a, b) => Number(b.name.startsWith('loader')) - Number(a.name.startsWith('loader')));
    for (const child of ordered) {
      if (!child.running) continue;
      try {
        await child.call({ cmd: 'close' }, z.unknown(), 20_000);
      } catch {
        // stop() below kills it if it does not exit
      }
      await child.stop(5_000);
    }
    for (const child of children) this.children.splice(this.children.indexOf(child), 1);
  }

  async releaseAll(): Promise<void> {
    await this.releaseChildren([...this.children]);
    if (this.mosquitto) await this.mosquitto.stop();
    this.mosquitto = null;
    for (const other of this.otherMosquittos.splice(0)) await other.stop();
    for (const p of this.processes.splice(0)) await p.stop();
  }
}

export interface TargetTimes {
  /** Wall-clock times (Date.now()) of the hub child's start and of its first saturated phase. */
  spawnedAt: number;
  saturateFrom: number;
  saturateTo: number;
}

/**
 * A broker with every device connected through its own loaders, ready for phases. Both targets
 * can be up at once, so the benchmark can alternate their saturated phases (--rounds): the host's
 * noise then falls on both alike instead of on whichever ran in the slow minute.
 */
export interface TargetSession {
  target: TargetResult['target'];
  /** The broker's MQTT port on 127.0.0.1. */
  port: number;
  loaders: ChildRpc[];
  consumer: PhaseConsumer;
  groups: ProcessGroup[];
  connectMs: number;
  brokerRssIdleMiB: number;
  times: TargetTimes;
  /** Reads the consumer's counters, checks them against what the phases acked, stops the processes. */
  finish(phases: PhaseResult[]): Promise<TargetResult>;
  /** The hub's group commits so far (mosquitto has none). */
  commitCounts?: () => Promise<CommitCounts>;
  /** Issue 24: more consumers and counters over each phase (set by localApps.ts). */
  extras?: PhaseExtras;
  /** Hub: the app credentials' password files it made (hubExtras.apps), in workload order. */
  passwordFiles?: string[];
}

interface CommitCounts { transactions: number; items: number }

/** Runs a phase; for the hub, also how many transactions it took and how many messages each carried. */
async function withCommits(t: TargetSession, run: () => Promise<PhaseResult>): Promise<PhaseResult> {
  const before = await t.commitCounts?.();
  const result = await run();
  const after = await t.commitCounts?.();
  if (before === undefined || after === undefined) return result;
  const transactions = after.transactions - before.transactions;
  return { ...result, hubCommits: { transactions, meanItems: transactions === 0 ? 0 : (after.items - before.items) / transactions } };
}

export async function saturatedPhase(s: RunSettings, t: TargetSession): Promise<PhaseResult> {
  s.log(`${t.target}: saturate for ${s.saturate.seconds} s`);
  const from = Date.now();
  const result = await withCommits(t, () => runPhase(t.loaders, t.consumer, t.groups, { ...s.saturate, mode: 'saturate', ratePerSecond: 0 }, s.clockTicks, t.extras));
  if (t.times.saturateFrom === 0) [t.times.saturateFrom, t.times.saturateTo] = [from, from + s.saturate.seconds * 1000];
  s.log(`${t.target}:   ${Math.round(result.measured.perSecond)}/s, p99 ${result.measured.latencyMs.p99.toFixed(1)} ms`);
  return result;
}

export async function pacedPhase(s: RunSettings, t: TargetSession, rate: number): Promise<PhaseResult> {
  const paced = s.paced;
  if (!paced) throw new Error('the run has no paced phase');
  const offered = Math.max(1, Math.round(rate));
  s.log(`${t.target}: paced at ${offered}/s for ${paced.seconds} s`);
  const result = await withCommits(t, () => runPhase(t.loaders, t.consumer, t.groups, { ...paced, mode: 'paced', ratePerSecond: offered }, s.clockTicks, t.extras));
  s.log(`${t.target}:   ${Math.round(result.measured.perSecond)}/s, p99 ${result.measured.latencyMs.p99.toFixed(1)} ms`);
  return result;
}

const HubStatsSchema = z.object({
  clients: z.number(), online: z.number(), received: z.number(), refused: z.number(), reportedVersionSum: z.number(),
  upstreamEntries: z.number(), telemetrySamples: z.number(), upstreamFailures: z.number(), outboxDepth: z.number(),
  commits: z.number(), rollbacks: z.number(), hubTransactions: z.number(), hubCommittedItems: z.number(), warnings: z.array(z.string()),
});

async function waitForOnline(hub: ChildRpc, expected: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await hub.call({ cmd: 'stats' }, HubStatsSchema, 30_000);
    if (stats.online >= expected) return;
    if (Date.now() > deadline) throw new Error(`only ${stats.online} of ${expected} devices online after ${timeoutMs} ms`);
    await sleep(200);
  }
}

export async function startDeviceHub(s: RunSettings, res: Resources): Promise<TargetSession> {
  const execArgv = [...s.hubNodeFlags, ...(s.hubCpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', s.hubCpuProfDir] : [])];
  const times: TargetTimes = { spawnedAt: Date.now(), saturateFrom: 0, saturateTo: 0 };
  const hub = ChildRpc.start('devicehub', HUB_MODULE, execArgv);
  res.children.push(hub);
  const hubDir = s.hubDbDir;
  const { port, passwordFiles } = await hub.call({
    cmd: 'start', dbPath: join(hubDir, 'edge.db'), devicesFile: s.devicesFile,
    ...(s.hubMaxBatch !== undefined ? { maxBatch: s.hubMaxBatch } : {}),
    ...(s.hubTwinUpstreamMs !== undefined ? { twinUpstreamIntervalMs: s.hubTwinUpstreamMs } : {}),
    ...s.hubExtras,
  }, z.object({ port: z.number(), passwordFiles: z.array(z.string()).default([]) }), 60_000);
  s.log(`devicehub: pid ${hub.pid}, port ${port}; connecting ${s.devices.length} devices`);
  const loaders = await startLoaders({
    count: s.loaders, nice: s.loaderNice, devices: s.devices, port, password: s.password, t0Ms: s.t0Ms, concurrency: s.connectConcurrency, timeoutMs: 60_000,
  }, (rpc) => res.children.push(rpc));
  await waitForOnline(hub, s.devices.length, 30_000);
  const brokerRssIdleMiB = round(sampleProcess(hub.pid, s.clockTicks).rssBytes / 2 ** 20, 1);
  s.log(`devicehub: connected in ${loaders.connectMs} ms, RSS ${brokerRssIdleMiB} MiB`);
  const groups: ProcessGroup[] = [
    { label: 'devicehub', pids: [hub.pid] },
    { label: 'loaders', pids: loaders.rpcs.map((r) => r.pid) },
    { label: 'bench', pids: [], self: true },
  ];
  const finish = async (phases: PhaseResult[]): Promise<TargetResult> => {
    const acked = phases.reduce((sum, p) => sum + p.loaders.acked, 0);
    const telemetryAcked = phases.reduce((sum, p) => sum + p.loaders.telemetryAcked, 0);
    // Acked telemetry waits in the hub's batch for up to a second before it reaches the outbox.
    let stats = await hub.call({ cmd: 'stats' }, HubStatsSchema, 30_000);
    for (const deadline = Date.now() + 5_000; stats.telemetrySamples < telemetryAcked && Date.now() < deadline;) {
      await sleep(250);
      stats = await hub.call({ cmd: 'stats' }, HubStatsSchema, 30_000);
    }
    const warnings = [...stats.warnings];
    // Every bench report changes its twin (the send time is a property), so each acked one is a version.
    if (stats.reportedVersionSum !== acked - telemetryAcked) {
      warnings.push(`${acked - telemetryAcked} reports were acked but the twins hold ${stats.reportedVersionSum} reported updates`);
    }
    if (stats.telemetrySamples !== telemetryAcked) {
      warnings.push(`${telemetryAcked} telemetry samples were acked but ${stats.telemetrySamples} reached the outbox`);
    }
    if (stats.upstreamFailures > 0) warnings.push(`${stats.upstreamFailures} outbox writes failed`);
    if (stats.rollbacks > 0) warnings.push(`${stats.rollbacks} transactions were rolled back`);
    await res.releaseChildren([...loaders.rpcs, hub]);
    return {
      target: 'devicehub', connectMs: loaders.connectMs, brokerRssIdleMiB, phases,
      consumerCounters: {
        publishesAcked: acked, received: stats.received, refused: stats.refused,
        reportedVersionSum: stats.reportedVersionSum, telemetrySamples: stats.telemetrySamples, upstreamEntries: stats.upstreamEntries, outboxDepth: stats.outboxDepth,
        upstreamCommits: stats.commits,
      },
      warnings,
    };
  };
  const commitCounts = async (): Promise<CommitCounts> => {
    const stats = await hub.call({ cmd: 'stats' }, HubStatsSchema, 30_000);
    return { transactions: stats.hubTransactions, items: stats.hubCommittedItems };
  };
  return {
    target: 'devicehub', port, loaders: loaders.rpcs, consumer: publisherAcks(loaders.rpcs), groups, connectMs: loaders.connectMs, brokerRssIdleMiB, times, finish, commitCounts,
    passwordFiles,
  };
}

export async function startMosquittoTarget(s: RunSettings, res: Resources): Promise<TargetSession> {
  const dir = join(s.dir, 'mosquitto');
  mkdirSync(dir, { recursive: true });
  const mosquitto = await startMosquitto(dir);
  res.mosquitto = mosquitto;
  const subscriber = ChildRpc.start('subscriber', SUBSCRIBER_MODULE);
  res.children.push(subscriber);
  await subscriber.call({
    cmd: 'start', port: mosquitto.port, clientId: 'bench-subscriber', topics: ['ef/devices/+/twin/reported', 'ef/devices/+/telemetry'],
    qos: s.subscriberQos, t0Ms: s.t0Ms,
  }, z.null(), 30_000);
  s.log(`mosquitto: pid ${mosquitto.pid}, port ${mosquitto.port}; connecting ${s.devices.length} devices`);
  const loaders = await startLoaders({
    count: s.loaders, nice: s.loaderNice, devices: s.devices, port: mosquitto.port, password: s.password, t0Ms: s.t0Ms, concurrency: s.connectConcurrency, timeoutMs: 60_000,
  }, (rpc) => res.children.push(rpc));
  const brokerRssIdleMiB = round(sampleProcess(mosquitto.pid, s.clockTicks).rssBytes / 2 ** 20, 1);
  s.log(`mosquitto: connected in ${loaders.connectMs} ms, RSS ${brokerRssIdleMiB} MiB`);
  const groups: ProcessGroup[] = [
    { label: 'mosquitto', pids: [mosquitto.pid] },
    { label: 'subscriber', pids: [subscriber.pid] },
    { label: 'loaders', pids: loaders.rpcs.map((r) => r.pid) },
    { label: 'bench', pids: [], self: true },
  ];
  const finish = async (phases: PhaseResult[]): Promise<TargetResult> => {
    const stats = await subscriber.call({ cmd: 'stats' }, z.object({ received: z.number(), unreadable: z.number(), disconnects: z.number() }), 30_000);
    const acked = phases.reduce((sum, p) => sum + p.loaders.acked, 0);
    const warnings: string[] = [];
    if (stats.received < acked) warnings.push(`${acked} publishes were acked but the subscriber got only ${stats.received}`);
    if (stats.disconnects > 0) warnings.push(`the subscriber was disconnected ${stats.disconnects} times`);
    await res.releaseChildren([...loaders.rpcs, subscriber]);
    await mosquitto.stop();
    res.mosquitto = null;
    return {
      target: 'mosquitto', connectMs: loaders.connectMs, brokerRssIdleMiB, phases,
      consumerCounters: { publishesAcked: acked, received: stats.received, unreadable: stats.unreadable },
      warnings,
    };
  };
  return {
    target: 'mosquitto', port: mosquitto.port, loaders: loaders.rpcs, consumer: receivingChild(subscriber), groups, connectMs: loaders.connectMs, brokerRssIdleMiB,
    times: { spawnedAt: 0, saturateFrom: 0, saturateTo: 0 }, finish,
  };
}
