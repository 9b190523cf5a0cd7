#!/usr/bin/env node
/**
 * Fan-out benchmark: N simulated edges (real CloudLinks, in-memory edge state) against a real
 * cloudcore child process. Measures how long one app bound to every node takes to reach and be
 * acked by all of them (create, then update), what that costs per node on the wire, cloudcore's
 * RSS/CPU, and the idle heartbeat traffic per node.
 *
 * Then (as root, with iptables) it cuts every link for --outage-seconds, changes the app during
 * the cut, restores the links and measures how long the fleet takes to resume and ack it:
 * once with a reset cut (connections refused and destroyed) and once with a silent one (every
 * packet dropped, no FIN/RST, so only heartbeats notice).
 *
 *   npm run bench:fanout -- --nodes 2000 --idle-seconds 60 --outage-seconds 60
 *
 * With `--store etcd`, `--replicas N` (N > 1), `--workers` or `--kill` it runs the scale-out
 * variant instead (scaleout/scaleOut.ts): replicas over a real etcd cluster, edges spread over
 * several processes. `--store sqlite --replicas 1` is this bench, unchanged.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { parseBenchOptions, runGuarded } from './harness.js';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { z } from 'zod';
import { startCloudcoreChild, type CloudcoreChild } from './cloudcoreProcess.js';
import { ApiClient, connectFleet, nodeNames, prepareFleet, stopFleet, type SimulatedEdge } from './fleet.js';
import { measureFanoutStep, measureIdle, settleCloud, type Probe } from './measure.js';
import {
  clockTicksPerSecond, loadAverage, openFilesLimit, procDelta, round, sampleProcess, sampleSelf,
} from './procStats.js';
import { summaryText, warningsFor, type FanoutReport } from './report.js';
import { LinkCut, type CutMode } from './linkCut.js';
import { measureOutage, type OutageResult } from './outage.js';
import { installWireCounters } from './wireCounters.js';
import { measureMtls, type MtlsResult } from './mtlsPhase.js';
import { runScaleOut, wantsScaleOut } from './scaleout/scaleOut.js';

const OptionsSchema = z.object({
  // Accepted so `--store sqlite --replicas 1` names this bench explicitly; anything else is scale-out.
  store: z.literal('sqlite'),
  replicas: z.literal('1'),
  nodes: z.coerce.number().int().min(1).max(20_000),
  heartbeatSeconds: z.coerce.number().min(1).max(3600),
  idleSeconds: z.coerce.number().min(0).max(3600),
  timeoutSeconds: z.coerce.number().min(10).max(86_400),
  restConcurrency: z.coerce.number().int().min(1).max(1000),
  connectConcurrency: z.coerce.number().int().min(1).max(10_000),
  cloudCpuProf: z.string().min(1).optional(),
  outageSeconds: z.coerce.number().min(0).max(3600),
  mtlsNodes: z.coerce.number().int().min(0).max(20_000).optional(),
  rotationSeconds: z.coerce.number().min(1).max(3600),
  outageModes: z.string().transform((v, ctx) => {
    const modes = v.split(',').map((m) => m.trim());
    const bad = modes.filter((m) => m !== 'reset' && m !== 'silent');
    if (bad.length > 0) ctx.addIssue({ code: 'custom', message: `unknown cut ${bad.join(', ')}: expected reset, silent or both` });
    return modes as CutMode[];
  }),
});
type Options = z.infer<typeof OptionsSchema>;

const APP = 'fanout-bench';
/** The REST client's source address: a link cut lets it through, so the app can change during the cut. */
const API_ADDRESS = '127.0.0.2';

function parseOptions(argv: string[]): Options {
  const program = new Command('fanout')
    .description('EdgeFleet fan-out benchmark: one app bound to N simulated edges')
    .option('--store <kind>', 'sqlite: this bench; etcd: the scale-out bench (replicas over etcd, edges over worker processes)', 'sqlite')
    .option('--replicas <n>', 'cloudcore replicas; more than 1 runs the scale-out bench (needs --store etcd)', '1')
    .option('--nodes <n>', 'simulated edge nodes', '1000')
    .option('--heartbeat-seconds <n>', 'edge heartbeat period', '30')
    .option('--idle-seconds <n>', 'length of the idle measurement (0 skips it)', '60')
    .option('--timeout-seconds <n>', 'abort the whole run after this long', '600')
    .option('--rest-concurrency <n>', 'token mints and joins in flight at once', '50')
    .option('--connect-concurrency <n>', 'links between start and snapshot at once', '200')
    .option('--cloud-cpu-prof <dir>', 'run cloudcore under node --cpu-prof, profile written to <dir> on exit')
    .option('--outage-seconds <n>', 'cut every link this long, change the app, restore (0 skips; needs root and iptables)', '60')
    .option('--outage-modes <list>', 'which cuts, in order: reset, silent', 'reset,silent')
    .option('--mtls-nodes <n>', 'then the same over mutual TLS (cloudcore on HTTPS with its own CA): this many nodes (default --nodes; 0 skips)')
    .option('--rotation-seconds <n>', 'in the mutual TLS phase every node renews its certificate within this window', '60');
  return parseBenchOptions('fanout', program, OptionsSchema, argv);
}

const log = (line: string) => process.stderr.write(`[fanout ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** Everything the run holds that must be released, whatever way it ends. */
class Resources {
  tempDir: string | undefined;
  cloud: CloudcoreChild | undefined;
  edges: SimulatedEdge[] = [];
  cut: LinkCut | undefined;
  private released = false;

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.cut?.restore();
    const edges = this.edges;
    if (edges.length > 0) {
      log(`stopping ${edges.length} links`);
      await Promise.race([stopFleet(edges), new Promise((r) => setTimeout(r, 30_000).unref())]);
    }
    if (this.cloud) {
      log('stopping cloudcore (SIGTERM)');
      const code = await this.cloud.stop();
      if (code !== 0) log(`cloudcore exited with code ${code}`);
    }
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }
}

async function run(opts: Options, res: Resources, deadline: number): Promise<FanoutReport> {
  const limit = openFilesLimit();
  if (limit !== undefined && opts.nodes + 200 > limit) {
    throw new Error(`--nodes ${opts.nodes} needs about ${opts.nodes + 200} open files per process, the limit is ${limit} (ulimit -n)`);
  }
  const loadAverageStart = loadAverage();
  const remainingMs = () => Math.max(1000, deadline - Date.now());
  installWireCounters();
  res.tempDir = mkdtempSync(join(tmpdir(), 'edgefleet-fanout-'));
  const cpuProfDir = opts.cloudCpuProf ? resolve(opts.cloudCpuProf) : undefined;
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  res.cloud = await startCloudcoreChild({
    dataDir: join(res.tempDir, 'cloudcore'),
    logPath: join(res.tempDir, 'cloudcore.log'),
    // An edge the benchmark keeps busy must not be declared dead between two heartbeats.
    offlineAfterSeconds: Math.max(90, 3 * opts.heartbeatSeconds),
    ...(cpuProfDir ? { cpuProfDir } : {}),
    readyTimeoutMs: 30_000,
  });
  const cloud = res.cloud;
  log(`cloudcore pid ${cloud.pid} at ${cloud.url}`);
  const clockTicks = clockTicksPerSecond();
  const api = new ApiClient(cloud.url, cloud.adminToken, API_ADDRESS);

  const setupCloud0 = sampleProcess(cloud.pid, clockTicks);
  const setupSelf0 = sampleSelf();
  const fleetOpts = {
    cloudUrl: cloud.url, api, nodes: nodeNames(opts.nodes), heartbeatMs: opts.heartbeatSeconds * 1000,
    restConcurrency: opts.restConcurrency, connectConcurrency: opts.connectConcurrency, progress: log,
  };
  const prepared = await prepareFleet(fleetOpts);
  res.edges = prepared.edges;
  const connectMs = await connectFleet(prepared.edges, fleetOpts);
  const fleet = { edges: prepared.edges, timings: { mintMs: prepared.mintMs, joinMs: prepared.joinMs, connectMs } };
  const setupCloud1 = sampleProcess(cloud.pid, clockTicks);
  const setupSelf1 = sampleSelf();
  const probe: Probe = { cloudPid: cloud.pid, cloudSpawnedAt: cloud.spawnedAt, clockTicks, edges: fleet.edges };
  log(`all ${opts.nodes} links connected; waiting for cloudcore to go quiet`);
  const setupSettle = await settleCloud(probe);

  const template = (marker: string) => ({ runtime: 'process', command: '/bin/true', args: [marker], restartPolicy: 'Never' });
  log('step 1: POST /apps (empty selector)');
  const create = await measureFanoutStep(probe, 'create', APP, 'v1', remainingMs(), () =>
    api.request('POST', '/apps', { metadata: { name: APP }, spec: { selector: {}, template: template('v1') } }));
  log(`  every node acked after ${create.allAckedMs} ms`);
  log('step 2: PUT /apps/{name} (changed template)');
  const update = await measureFanoutStep(probe, 'update', APP, 'v2', remainingMs(), () =>
    api.request('PUT', `/apps/${APP}`, { metadata: { name: APP }, spec: { selector: {}, template: template('v2') } }));
  log(`  every node acked after ${update.allAckedMs} ms`);

  const outages: OutageResult[] = [];
  let outageSkipped: string | null = null;
  if (opts.outageSeconds > 0) {
    outageSkipped = await LinkCut.unavailableReason();
    if (outageSkipped) log(`outage phase skipped: ${outageSkipped}`);
    for (const mode of outageSkipped ? [] : opts.outageModes) {
      const marker = `v${3 + outages.length}`;
      log(`step ${3 + outages.length}: ${mode} cut of every link for ${opts.outageSeconds} s, app changed to ${marker} during it`);
      res.cut = new LinkCut(Number(new URL(cloud.url).port), API_ADDRESS);
      const outage = await measureOutage(probe, {
        app: APP, marker, mode, cutSeconds: opts.outageSeconds, changeAfterMs: Math.min(5_000, opts.outageSeconds * 500),
        timeoutMs: remainingMs(), cut: res.cut, log,
        // Every node at once: the phase measures the links' recovery, not a rollout's pacing.
        change: () => api.request('PUT', `/apps/${APP}`, {
          metadata: { name: APP }, spec: { selector: {}, template: template(marker), strategy: { type: 'rolling', maxUnavailable: '100%' } },
        }),
      });
      outages.push(outage);
      log(`  every node acked ${outage.allAckedAfterRestoreMs} ms after the restore`);
      await settleCloud(probe);
    }
  }

  let idle = null;
  if (opts.idleSeconds > 0) {
    if (Date.now() + opts.idleSeconds * 1000 > deadline) throw new Error(`no time left for --idle-seconds ${opts.idleSeconds} within --timeout-seconds`);
    log(`idle for ${opts.idleSeconds} s`);
    idle = await measureIdle(probe, opts.idleSeconds, opts.heartbeatSeconds);
  }
  const cloudEnd = sampleProcess(cloud.pid, clockTicks);
  const mtls = await mtlsPhase(opts, res);
  const partial = { create, update, idle, heartbeatSeconds: opts.heartbeatSeconds, setupSettled: setupSettle.settled };
  return {
    bench: 'fanout',
    nodes: opts.nodes,
    heartbeatSeconds: opts.heartbeatSeconds,
    idleSeconds: opts.idleSeconds,
    node: process.version,
    cpus: availableParallelism(),
    loadAverageStart,
    loadAverageEnd: loadAverage(),
    setup: {
      mintMs: round(fleet.timings.mintMs, 0), joinMs: round(fleet.timings.joinMs, 0), connectMs: round(fleet.timings.connectMs, 0),
      cloud: procDelta(setupCloud0, setupCloud1), bench: procDelta(setupSelf0, setupSelf1),
      settleMs: setupSettle.ms, cloudSettled: setupSettle.settled,
    },
    create, update, outages, outageSkipped, idle, mtls,
    cloudRssEndMiB: round(cloudEnd.rssBytes / 2 ** 20, 1),
    benchRssEndMiB: round(sampleSelf().rssBytes / 2 ** 20, 1),
    cloudCpuProfileDir: cpuProfDir ?? null,
    warnings: warningsFor(partial),
  };
}

/**
 * The same fleet over mutual TLS, after the plain run has been released (two fleets at once would
 * measure each other): join with pinned tokens and CSRs, connect, idle, mass rotation.
 */
async function mtlsPhase(opts: Options, res: Resources): Promise<MtlsResult | null> {
  const nodes = opts.mtlsNodes ?? opts.nodes;
  if (nodes === 0) return null;
  log(`mTLS phase: releasing the plain fleet, then ${nodes} nodes over mutual TLS`);
  await stopFleet(res.edges);
  res.edges = [];
  await res.cloud?.stop();
  res.cloud = undefined;
  return measureMtls({
    nodes: nodeNames(nodes), heartbeatMs: opts.heartbeatSeconds * 1000, heartbeatSeconds: opts.heartbeatSeconds,
    restConcurrency: opts.restConcurrency, connectConcurrency: opts.connectConcurrency, idleSeconds: opts.idleSeconds,
    rotationSeconds: opts.rotationSeconds, offlineAfterSeconds: Math.max(90, 3 * opts.heartbeatSeconds),
    dataDir: join(res.tempDir!, 'cloudcore-mtls'), logPath: join(res.tempDir!, 'cloudcore-mtls.log'), log,
    hold: (cloud, edges) => { res.cloud = cloud; res.edges = edges; },
  });
}

async function main(): Promise<void> {
  if (wantsScaleOut(process.argv)) {
    await runScaleOut(process.argv);
    return;
  }
  const opts = parseOptions(process.argv);
  const res = new Resources();
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  await runGuarded({
    timeoutSeconds: opts.timeoutSeconds,
    log,
    release: () => res.release(),
    diagnostics: () => `cloudcore log tail:\n${res.cloud?.logTail() ?? '(not started)'}`,
    run: () => run(opts, res, deadline),
    summary: summaryText,
  });
}

await main();
