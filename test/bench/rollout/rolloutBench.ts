#!/usr/bin/env node
/**
 * Rollout benchmark (issue 5): a rolling update of one app across N simulated edges (real
 * CloudLinks over real WebSockets, runtime double, in-memory edge state by default) against a
 * real cloudcore child process. Prints the time until every edge runs the new revision and
 * until the rollout is Succeeded, cloudcore's CPU during the rollout (from /proc; with
 * --cloud-cpu-prof also split by part: rollout controller, scheduler, hub, store…) and the
 * store's writes per node (from the store's event log, by kind).
 *
 *   npm run bench:rollout -- --nodes 10000 --max-unavailable 10%
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { z } from 'zod';
import { CountOrPercentSchema, RolloutSchema } from '../../../protocol/index.js';
import { parseBenchOptions, runGuarded } from '../harness.js';
import { clockTicksPerSecond, loadAverage, openFilesLimit, procDelta, sampleProcess, sampleSelf } from '../procStats.js';
import { startChildCloud, type SimCloud } from '../../helpers/simCloud.js';
import { SimFleet } from '../../helpers/simFleet.js';
import { CpuProfileSchema, cpuShares, perNode, summaryText, type CpuShares, type RolloutBenchReport } from './rolloutReport.js';
import { storeWritesByKind } from './storeWrites.js';

const OptionsSchema = z.object({
  nodes: z.coerce.number().int().min(1).max(20_000),
  maxUnavailable: z.string().transform((v) => (/^\d+$/.test(v) ? Number(v) : v)).pipe(CountOrPercentSchema)
    .refine((v) => (typeof v === 'number' ? v : Number.parseFloat(v)) > 0, 'must be at least 1 node or more than 0%'),
  minReadySeconds: z.coerce.number().int().min(0).max(3600),
  startDelayMs: z.coerce.number().int().min(0).max(60_000),
  heartbeatSeconds: z.coerce.number().min(1).max(3600),
  edgeState: z.enum(['memory', 'sqlite']),
  concurrency: z.coerce.number().int().min(1).max(1000),
  pollMs: z.coerce.number().int().min(50).max(10_000),
  timeoutSeconds: z.coerce.number().min(10).max(86_400),
  cloudCpuProf: z.string().min(1).optional(),
});
type Options = z.infer<typeof OptionsSchema>;

const APP = 'rollout-bench';

function parseOptions(argv: string[]): Options {
  const program = new Command('rolloutBench')
    .description('EdgeFleet rollout benchmark: a rolling update across N simulated edges')
    .option('--nodes <n>', 'simulated edge nodes', '1000')
    .option('--max-unavailable <n|N%>', 'rolling strategy maxUnavailable (count or percent)', '10%')
    .option('--min-ready-seconds <n>', 'strategy minReadySeconds', '0')
    .option('--start-delay-ms <n>', 'how long the runtime double takes to start a workload', '0')
    .option('--heartbeat-seconds <n>', 'edge heartbeat period', '30')
    .option('--edge-state <kind>', 'memory (default) or sqlite (a MetaStore file per node; needs ~4 open files per node)', 'memory')
    .option('--concurrency <n>', 'joins and link connects in flight at once', '50')
    .option('--poll-ms <n>', 'how often GET /apps/{app}/rollout is polled', '500')
    .option('--timeout-seconds <n>', 'abort the whole run after this long', '1800')
    .option('--cloud-cpu-prof <dir>', 'run cloudcore under node --cpu-prof and split its rollout CPU by part');
  return parseBenchOptions('rolloutBench', program, OptionsSchema, argv);
}

const log = (line: string) => process.stderr.write(`[rollout ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

class Resources {
  tempDir: string | undefined;
  cloud: SimCloud | undefined;
  fleet: SimFleet | undefined;
  private released = false;

  async stopFleetAndCloud(): Promise<void> {
    const fleet = this.fleet;
    this.fleet = undefined;
    if (fleet) {
      log(`stopping ${fleet.nodes.length} simulated edges`);
      await Promise.race([fleet.stop(), new Promise((r) => setTimeout(r, 60_000).unref())]);
    }
    const cloud = this.cloud;
    this.cloud = undefined;
    if (cloud) {
      log('stopping cloudcore (SIGTERM)');
      await cloud.close();
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.stopFleetAndCloud();
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }
}

async function storeRevision(fleet: SimFleet): Promise<number> {
  const body = await fleet.api.request('GET', '/configs') as { resourceVersion?: unknown };
  if (typeof body.resourceVersion !== 'number') throw new Error('GET /configs: no resourceVersion');
  return body.resourceVersion;
}

/** Waits until the store revision has not moved for `quietMs` (status writes trail a rollout). */
async function waitQuiet(fleet: SimFleet, quietMs: number, maxMs: number): Promise<{ revision: number; at: number; settled: boolean }> {
  const deadline = Date.now() + maxMs;
  let last = await storeRevision(fleet);
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await storeRevision(fleet);
    if (now !== last) { last = now; since = Date.now(); continue; }
    if (Date.now() - since >= quietMs) return { revision: now, at: since, settled: true };
  }
  return { revision: last, at: Date.now(), settled: false };
}

async function getRollout(fleet: SimFleet) {
  const parsed = RolloutSchema.safeParse(await fleet.api.request('GET', `/apps/${APP}/rollout`));
  if (!parsed.success) throw new Error(`GET /apps/${APP}/rollout: ${parsed.error.message}`);
  return parsed.data;
}

function appBody(version: string, opts: Options) {
  return {
    metadata: { name: APP },
    spec: {
      selector: {},
      template: { runtime: 'process', command: '/bin/sleep', args: ['3600'], env: { VERSION: version } },
      strategy: { type: 'rolling', maxUnavailable: opts.maxUnavailable, minReadySeconds: opts.minReadySeconds, offlineWindowSeconds: 0 },
    },
  };
}

async function until(what: string, deadline: number, probe: () => boolean | Promise<boolean>, everyMs: number): Promise<void> {
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function newestProfile(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
  return files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

async function run(opts: Options, res: Resources, deadline: number): Promise<RolloutBenchReport> {
  const limit = openFilesLimit();
  const perNodeFiles = opts.edgeState === 'sqlite' ? 4 : 1;
  if (limit !== undefined && opts.nodes * perNodeFiles + 200 > limit) {
    throw new Error(`--nodes ${opts.nodes} with --edge-state ${opts.edgeState} needs about ${opts.nodes * perNodeFiles + 200} open files, the limit is ${limit} (ulimit -n)`);
  }
  const loadAverageStart = loadAverage();
  res.tempDir = mkdtempSync(join(tmpdir(), 'edgefleet-rollout-'));
  const cpuProfDir = opts.cloudCpuProf ? resolve(opts.cloudCpuProf) : undefined;
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  const dataDir = join(res.tempDir, 'cloudcore');
  res.cloud = await startChildCloud({
    dataDir, proxy: false,
    // A node the benchmark keeps busy must not be declared dead between two heartbeats.
    offlineAfterSeconds: Math.max(90, 3 * opts.heartbeatSeconds),
    // Keep the whole rollout in the event log so writes can be counted by kind afterwards.
    settings: { maxEvents: Math.max(100_000, opts.nodes * 200) },
    ...(cpuProfDir ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] } : {}),
  });
  const cloud = res.cloud;
  const cloudPid = cloud.pid();
  log(`cloudcore pid ${cloudPid} at ${cloud.url}`);
  const ticks = clockTicksPerSecond();

  let t = performance.now();
  res.fleet = await SimFleet.start({
    cloudUrl: cloud.url, apiUrl: cloud.url, adminToken: cloud.adminToken, nodes: opts.nodes, state: opts.edgeState,
    dataRoot: join(res.tempDir, 'edges'), heartbeatMs: opts.heartbeatSeconds * 1000, concurrency: opts.concurrency, progress: log,
  });
  const fleet = res.fleet;
  const joinAndConnectMs = performance.now() - t;
  log(`${opts.nodes} edges joined and connected in ${(joinAndConnectMs / 1000).toFixed(1)} s`);

  t = performance.now();
  await fleet.api.request('POST', '/apps', appBody('v1', opts));
  await until('revision 1 on every edge', deadline, () => fleet.nodesRunning(APP, 1).length === opts.nodes, 100);
  const firstRevisionMs = performance.now() - t;
  await until('rollout of revision 1 Succeeded', deadline, async () => (await getRollout(fleet)).status.phase === 'Succeeded', opts.pollMs);
  log(`revision 1 on every edge after ${(firstRevisionMs / 1000).toFixed(1)} s; waiting for the store to go quiet`);
  fleet.failures.startDelayMs = () => opts.startDelayMs;
  const before = await waitQuiet(fleet, 3000, 120_000);

  const cloud0 = sampleProcess(cloudPid, ticks);
  const self0 = sampleSelf();
  const putAt = Date.now();
  t = performance.now();
  const updated = await fleet.api.request('PUT', `/apps/${APP}`, appBody('v2', opts)) as { metadata: { generation?: number } };
  const revision = updated.metadata.generation;
  if (revision === undefined) throw new Error('PUT returned no generation');
  log(`PUT revision ${revision}: rolling update started`);
  let allEdgesRunningMs: number | undefined;
  let succeededMs: number | undefined;
  let widestUpdating = 0;
  let maxUnavailableNodes: number | null = null;
  const every = Math.max(1, Math.floor(opts.nodes / 10));
  let reported = 0;
  const edgeWatch = (async () => {
    await until('every edge running the new revision', deadline, () => {
      const n = fleet.nodesRunning(APP, revision).length;
      if (n >= reported + every) { reported = n - (n % every); log(`  ${n}/${opts.nodes} edges run revision ${revision}`); }
      return n === opts.nodes;
    }, 50);
    allEdgesRunningMs = performance.now() - t;
  })();
  await until('rollout Succeeded', deadline, async () => {
    const r = await getRollout(fleet);
    if (r.status.revision !== revision) return false;
    widestUpdating = Math.max(widestUpdating, r.status.counts.updating);
    maxUnavailableNodes = r.status.maxUnavailable;
    if (r.status.phase === 'Failed' || r.status.phase === 'RolledBack' || r.status.phase === 'Aborted') throw new Error(`rollout ended ${r.status.phase}: ${r.status.message}`);
    return r.status.phase === 'Succeeded';
  }, opts.pollMs);
  succeededMs = performance.now() - t;
  await edgeWatch;
  log(`rollout Succeeded after ${(succeededMs / 1000).toFixed(1)} s; waiting for the store to go quiet`);
  const after = await waitQuiet(fleet, 3000, 120_000);
  const cloud1 = sampleProcess(cloudPid, ticks);
  const self1 = sampleSelf();
  // The window runs to the sample, so it includes the quiet tail (~3 s of heartbeats only).
  const cloudDelta = procDelta(cloud0, cloud1);
  const spawnedAt = cloud.spawnedAt();

  await res.stopFleetAndCloud();
  const writes = storeWritesByKind(join(dataDir, 'cloudcore.db'), before.revision, after.revision);
  let cloudProfile: CpuShares | null = null;
  const profile = cpuProfDir ? newestProfile(cpuProfDir) : undefined;
  if (profile) {
    const parsed = CpuProfileSchema.parse(JSON.parse(readFileSync(profile, 'utf8')));
    cloudProfile = cpuShares(parsed, putAt - spawnedAt, cloud1.at - spawnedAt);
  }

  const warnings: string[] = [];
  if (!before.settled) warnings.push('the store never went quiet before the update; the measurement starts on a busy cloudcore');
  if (!after.settled) warnings.push('the store never went quiet after the rollout; writes and CPU are cut off');
  if (writes.compactedRevision > before.revision) warnings.push('the store compacted its event log during the run: per-kind counts are incomplete');
  if (writes.total !== after.revision - before.revision) warnings.push(`event log holds ${writes.total} writes, the revision moved ${after.revision - before.revision}`);
  if (cpuProfDir && !profile) warnings.push(`no .cpuprofile found in ${cpuProfDir}`);
  const load = loadAverageStart[0] ?? 0;
  if (load > 0.5 * availableParallelism()) warnings.push(`load average ${load} at start: other work on this machine skews the figures`);
  const cpu = cpus()[0];
  return {
    bench: 'rollout',
    nodes: opts.nodes,
    maxUnavailable: String(opts.maxUnavailable),
    maxUnavailableNodes,
    minReadySeconds: opts.minReadySeconds,
    startDelayMs: opts.startDelayMs,
    edgeState: opts.edgeState,
    heartbeatSeconds: opts.heartbeatSeconds,
    machine: { cpus: availableParallelism(), cpuModel: cpu?.model.trim() ?? 'unknown', memGiB: totalmem() / 2 ** 30, node: process.version },
    loadAverageStart,
    loadAverageEnd: loadAverage(),
    setup: { joinAndConnectMs: Math.round(joinAndConnectMs), firstRevisionMs: Math.round(firstRevisionMs) },
    rollout: {
      allEdgesRunningMs: Math.round(allEdgesRunningMs ?? Number.NaN),
      succeededMs: Math.round(succeededMs),
      pollMs: opts.pollMs,
      nodesPerSecond: opts.nodes / ((allEdgesRunningMs ?? succeededMs) / 1000),
      widestUpdating,
    },
    cloud: { ...cloudDelta, windowMs: cloud1.at - cloud0.at, rssEndMiB: cloudDelta.rssAfterMiB },
    cloudProfile,
    edges: procDelta(self0, self1),
    store: {
      revisionBefore: before.revision,
      revisionAfter: after.revision,
      writes: after.revision - before.revision,
      writesPerNode: (after.revision - before.revision) / opts.nodes,
      perNodeByKind: perNode(writes.byKind, opts.nodes),
    },
    warnings,
  };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv);
  const res = new Resources();
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  await runGuarded({
    timeoutSeconds: opts.timeoutSeconds,
    log,
    release: () => res.release(),
    diagnostics: () => `cloudcore log tail:\n${res.cloud?.logTail() ?? '(stopped)'}`,
    run: () => run(opts, res, deadline),
    summary: summaryText,
  });
}

await main();
