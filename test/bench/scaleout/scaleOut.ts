/**
 * The multi-process fan-out benchmark: R cloudcore replicas (over a real 3-member etcd cluster,
 * or one over SQLite) and N simulated edges spread over W worker processes, so no process holds
 * more sockets than its open-file limit. Same steps as the one-process bench (create, update,
 * idle), measured across every process, plus optional replica kills (a follower: session moves;
 * the leader: failover).
 *
 *   npm run bench:fanout -- --store etcd --replicas 3 --nodes 30000
 *   npm run bench:fanout -- --store etcd --replicas 3 --nodes 10000 --kill follower,leader --idle-seconds 0
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { z } from 'zod';
import { ApiClient, nodeNames } from '../fleet.js';
import { parseBenchOptions, runGuarded } from '../harness.js';
import { clockTicksPerSecond, loadAverage, openFilesLimit, round } from '../procStats.js';
import { etcdStep } from './etcdStats.js';
import { ConnectResultSchema, SetupResultSchema } from './ipc.js';
import { killReplica, type KillResult, type KillTarget } from './killPhase.js';
import { fleetSnapshot, fleetTotals, measureIdle, measureStep, settle, type Fleet } from './probe.js';
import { ControlPlane } from './replicas.js';
import { scaleOutSummary, scaleOutWarnings, type ScaleOutReport } from './scaleOutReport.js';
import { everyWorker, forkWorkers, type EdgeWorker } from './workerPool.js';

/** Sessions one process may hold: its open-file limit less room for the store, logs and clients. */
const FD_HEADROOM = 500;
const MAX_EDGES_PER_WORKER = 15_000;

const OptionsSchema = z.object({
  store: z.enum(['sqlite', 'etcd']),
  replicas: z.coerce.number().int().min(1).max(16),
  nodes: z.coerce.number().int().min(1).max(250_000),
  workers: z.coerce.number().int().min(1).max(32).optional(),
  heartbeatSeconds: z.coerce.number().min(1).max(3600),
  idleSeconds: z.coerce.number().min(0).max(3600),
  timeoutSeconds: z.coerce.number().min(10).max(86_400),
  restConcurrency: z.coerce.number().int().min(1).max(1000),
  connectConcurrency: z.coerce.number().int().min(1).max(10_000),
  workerHeapMib: z.coerce.number().int().min(256).max(16_384),
  etcdQuotaBytes: z.coerce.number().int().min(0),
  etcdCompactionRetention: z.coerce.number().int().min(0),
  leaderLeaseSeconds: z.coerce.number().int().min(1).max(600),
  replicaLeaseSeconds: z.coerce.number().int().min(1).max(600),
  update: z.enum(['yes', 'no']).transform((v) => v === 'yes'),
  killChange: z.enum(['yes', 'no']).transform((v) => v === 'yes'),
  kill: z.string().transform((v, ctx) => {
    const targets = v.split(',').map((t) => t.trim()).filter((t) => t !== '');
    const bad = targets.filter((t) => t !== 'follower' && t !== 'leader');
    if (bad.length > 0) ctx.addIssue({ code: 'custom', message: `unknown kill target ${bad.join(', ')}: expected follower, leader or both` });
    return targets as KillTarget[];
  }),
});
export type ScaleOutOptions = z.infer<typeof OptionsSchema>;

/** True when the command line asks for more than today's one-process, one-SQLite bench. */
export function wantsScaleOut(argv: readonly string[]): boolean {
  const value = (flag: string) => {
    const i = argv.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
    if (i < 0) return undefined;
    return argv[i]!.includes('=') ? argv[i]!.split('=')[1] : argv[i + 1];
  };
  return (value('--store') ?? 'sqlite') !== 'sqlite' || Number(value('--replicas') ?? '1') !== 1 || value('--workers') !== undefined || value('--kill') !== undefined;
}

function parseOptions(argv: string[]): ScaleOutOptions {
  const program = new Command('fanout')
    .description('EdgeFleet fan-out benchmark over cloudcore replicas and several edge worker processes')
    .option('--store <kind>', 'sqlite (one replica) or etcd (a 3-member etcd cluster started for the run)', 'sqlite')
    .option('--replicas <n>', 'cloudcore replicas (etcd store)', '1')
    .option('--nodes <n>', 'simulated edge nodes, spread round-robin over the replicas', '1000')
    .option('--workers <n>', `edge worker processes (default: one per ${MAX_EDGES_PER_WORKER} nodes)`)
    .option('--heartbeat-seconds <n>', 'edge heartbeat period', '30')
    .option('--idle-seconds <n>', 'length of the idle measurement (0 skips it)', '60')
    .option('--timeout-seconds <n>', 'abort the whole run after this long', '1800')
    .option('--rest-concurrency <n>', 'token mints and joins in flight at once, per worker', '25')
    .option('--connect-concurrency <n>', 'links between start and snapshot at once, per worker', '100')
    .option('--worker-heap-mib <n>', 'V8 heap of each worker', '4096')
    .option('--etcd-quota-bytes <n>', 'etcd --quota-backend-bytes', '8589934592')
    .option('--etcd-compaction-retention <n>', 'etcd --auto-compaction-mode revision --auto-compaction-retention', '100000')
    .option('--leader-lease-seconds <n>', 'cloudcore --leader-lease-seconds', '5')
    .option('--replica-lease-seconds <n>', 'cloudcore --replica-lease-seconds', '10')
    .option('--update <yes|no>', 'step 2, the update of the app (no: skip it; a slow store makes it minutes long)', 'yes')
    .option('--kill-change <yes|no>', 'after each kill, change the app and time until every node holds it', 'yes')
    .option('--kill <list>', 'after the idle window, SIGKILL replicas in this order: follower, leader (etcd, 2+ replicas)', '');
  const opts = parseBenchOptions('fanout', program, OptionsSchema, argv);
  const fail = (message: string) => { process.stderr.write(`fanout: ${message}\n`); process.exit(2); };
  if (opts.store === 'sqlite' && opts.replicas !== 1) fail('--replicas: SQLite is one process\'s file; replicas need --store etcd');
  if (opts.kill.length > 0 && (opts.store !== 'etcd' || opts.replicas < 2)) fail('--kill: needs --store etcd and at least 2 --replicas');
  if (opts.kill.length >= opts.replicas) fail(`--kill: killing ${opts.kill.length} of ${opts.replicas} replicas leaves none`);
  return opts;
}

const log = (line: string) => process.stderr.write(`[fanout ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const APP = 'fanout-bench';
const template = (marker: string) => ({ runtime: 'process', command: '/bin/true', args: [marker], restartPolicy: 'Never' });

class Resources {
  tempDir: string | undefined;
  plane: ControlPlane | undefined;
  workers: EdgeWorker[] = [];
  private released = false;

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.workers.length > 0) log(`stopping ${this.workers.length} edge workers`);
    await Promise.all(this.workers.map((w) => w.stop()));
    if (this.plane) {
      log('stopping the replicas (SIGTERM) and etcd');
      await this.plane.stop(log);
    }
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }
}

function checkLimits(opts: ScaleOutOptions, workers: number): void {
  const limit = openFilesLimit() ?? Number.POSITIVE_INFINITY;
  const perReplica = Math.ceil(opts.nodes / opts.replicas);
  const perWorker = Math.ceil(opts.nodes / workers);
  if (perReplica + FD_HEADROOM > limit) {
    throw new Error(`--nodes ${opts.nodes} over --replicas ${opts.replicas} is ${perReplica} sessions per replica; the open-file limit is ${limit} (ulimit -n): add replicas`);
  }
  if (perWorker + FD_HEADROOM > limit) throw new Error(`--workers ${workers} puts ${perWorker} edges in one process; the open-file limit is ${limit}: add workers`);
}

async function run(opts: ScaleOutOptions, res: Resources, deadline: number): Promise<ScaleOutReport> {
  const workerCount = opts.workers ?? Math.max(1, Math.ceil(opts.nodes / MAX_EDGES_PER_WORKER));
  checkLimits(opts, workerCount);
  const remainingMs = () => Math.max(1000, deadline - Date.now());
  const loadAverageStart = loadAverage();
  res.tempDir = mkdtempSync(join(tmpdir(), 'edgefleet-scaleout-'));
  const etcdArgs = [
    '--quota-backend-bytes', String(opts.etcdQuotaBytes),
    '--auto-compaction-mode', 'revision', '--auto-compaction-retention', String(opts.etcdCompactionRetention),
  ];
  const replicaArgs = ['--leader-lease-seconds', String(opts.leaderLeaseSeconds), '--replica-lease-seconds', String(opts.replicaLeaseSeconds)];
  const plane = await ControlPlane.start({
    store: opts.store, replicas: opts.replicas, tempDir: res.tempDir, etcdArgs, replicaArgs, log,
    offlineAfterSeconds: Math.max(90, 3 * opts.heartbeatSeconds),
  }, (p) => { res.plane = p; });
  res.workers = forkWorkers(workerCount, opts.workerHeapMib, log);
  const fleet: Fleet = { workers: res.workers, plane, clockTicks: clockTicksPerSecond(), nodes: opts.nodes };

  const names = nodeNames(opts.nodes);
  const perWorker = Math.ceil(opts.nodes / workerCount);
  const replicaRefs = plane.replicas.map((r) => ({ url: r.child.url, adminToken: r.child.adminToken }));
  log(`${opts.nodes} nodes over ${opts.replicas} replica(s) (round-robin) and ${workerCount} worker(s)`);
  const setup0 = await fleetSnapshot(fleet);
  let t = performance.now();
  const setups = await Promise.all(res.workers.map((w, wi) => w.request({
    type: 'setup',
    nodes: names.slice(wi * perWorker, (wi + 1) * perWorker).map((node, j) => ({ node, replica: (wi * perWorker + j) % opts.replicas })),
    replicas: replicaRefs, heartbeatMs: opts.heartbeatSeconds * 1000,
    restConcurrency: opts.restConcurrency, connectConcurrency: opts.connectConcurrency,
  }, SetupResultSchema)));
  const joinWallMs = performance.now() - t;
  t = performance.now();
  await everyWorker(res.workers, { type: 'connect' }, ConnectResultSchema);
  const connectWallMs = performance.now() - t;
  const setup1 = await fleetSnapshot(fleet);
  log(`all ${opts.nodes} links connected in ${(connectWallMs / 1000).toFixed(1)} s; waiting for the replicas and etcd to go quiet`);
  const setupSettle = await settle(fleet);
  const sessionsAfterSetup = await plane.sessionsByReplica();
  log(`sessions per replica: ${sessionsAfterSetup.join(' / ')}`);
  const leaderAtStart = (await plane.leader())?.id ?? null;

  const api = new ApiClient(plane.replicas[0]!.child.url, plane.replicas[0]!.child.adminToken);
  log(`step 1: POST /apps at ${plane.replicas[0]!.id} (empty selector)`);
  const create = await measureStep(fleet, 'create', APP, 'v1', remainingMs(), () =>
    api.request('POST', '/apps', { metadata: { name: APP }, spec: { selector: {}, template: template('v1') } }));
  log(`  every node acked after ${create.allAckedMs} ms`);
  // Each phase's figures as they come: a run cut short by --timeout-seconds still leaves them.
  log(`create: ${JSON.stringify(create)}`);
  let update = null;
  if (opts.update) {
    log('step 2: PUT /apps/{name} (changed template)');
    update = await measureStep(fleet, 'update', APP, 'v2', remainingMs(), () =>
      api.request('PUT', `/apps/${APP}`, { metadata: { name: APP }, spec: { selector: {}, template: template('v2') } }));
    log(`  every node acked after ${update.allAckedMs} ms`);
    log(`update: ${JSON.stringify(update)}`);
  }

  let idle = null;
  if (opts.idleSeconds > 0) {
    log(`idle for ${opts.idleSeconds} s`);
    idle = await measureIdle(fleet, opts.idleSeconds, opts.heartbeatSeconds);
    log(`idle: ${JSON.stringify(idle)}`);
  }
  const idleEnd = await fleetSnapshot(fleet);

  const kills: KillResult[] = [];
  for (const [i, target] of opts.kill.entries()) {
    const marker = `k${i + 1}`;
    const app = target === 'leader' ? `${APP}-failover-${i + 1}` : APP;
    kills.push(await killReplica(fleet, { target, app, marker, template, change: opts.killChange, timeoutMs: Math.min(remainingMs(), 600_000), log }));
    const k = kills.at(-1)!;
    log(`kill: ${JSON.stringify(k)}`);
    log(`  ${k.sessionsMoved} sessions moved (${k.resumes} resumes, ${k.snapshots} snapshots); every node held the change ${k.allAckedMs ?? '(none made)'} ms after the kill`
      + (k.electedAfterMs !== null ? `; ${k.newLeader} elected after ${k.electedAfterMs} ms` : ''));
    await settle(fleet);
  }

  const setupTotals = [fleetTotals(setup0), fleetTotals(setup1)] as const;
  const report: Omit<ScaleOutReport, 'warnings'> = {
    bench: 'fanout-scaleout',
    store: opts.store,
    replicas: opts.replicas,
    workers: workerCount,
    nodes: opts.nodes,
    heartbeatSeconds: opts.heartbeatSeconds,
    node: process.version,
    cpus: availableParallelism(),
    loadAverageStart,
    loadAverageEnd: loadAverage(),
    etcdArgs: plane.etcd ? etcdArgs : null,
    replicaArgs: plane.etcd ? replicaArgs : null,
    setup: {
      joinWallMs: round(joinWallMs, 0),
      mintMs: round(Math.max(...setups.map((x) => x.mintMs)), 0), joinMs: round(Math.max(...setups.map((x) => x.joinMs)), 0), connectWallMs: round(connectWallMs, 0), settleMs: setupSettle.ms, settled: setupSettle.settled,
      sessionsByReplica: sessionsAfterSetup, leader: leaderAtStart,
      workersCpuSeconds: round(setupTotals[1].workersCpuSeconds - setupTotals[0].workersCpuSeconds, 1),
      replicaCpuSeconds: plane.replicas.map((_, i) => round((setup1.replicas[i]?.cpuSeconds ?? 0) - (setup0.replicas[i]?.cpuSeconds ?? 0), 1)),
      replicaRssMiB: plane.replicas.map((_, i) => round((setup1.replicas[i]?.rssBytes ?? 0) / 2 ** 20, 1)),
      etcd: setup0.etcd && setup1.etcd ? etcdStep(setup0.etcd, setup1.etcd) : null,
    },
    create, update, idle, kills,
    end: {
      replicaRssMiB: plane.replicas.map((_, i) => (idleEnd.replicas[i] ? round(idleEnd.replicas[i]!.rssBytes / 2 ** 20, 1) : null)),
      etcdRssMiB: idleEnd.etcd?.members.map((m) => (m.proc ? round(m.proc.rssBytes / 2 ** 20, 1) : null)) ?? [],
      etcdDbMiB: idleEnd.etcd?.members.map((m) => (m.counters ? round(m.counters.dbBytes / 2 ** 20, 1) : null)) ?? [],
      workersRssMiB: idleEnd.workers.map((w) => round(w.self.rssBytes / 2 ** 20, 1)),
    },
  };
  return { ...report, warnings: scaleOutWarnings(report) };
}

export async function runScaleOut(argv: string[]): Promise<void> {
  const opts = parseOptions(argv);
  const res = new Resources();
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  await runGuarded({
    timeoutSeconds: opts.timeoutSeconds,
    log,
    release: () => res.release(),
    diagnostics: () => res.plane?.replicas.map((r) => `cloudcore ${r.id} log tail:\n${r.child.logTail(8)}`).join('\n') ?? '(no replica started)',
    run: () => run(opts, res, deadline),
    summary: scaleOutSummary,
  });
}
