#!/usr/bin/env node
/**
 * Edge footprint benchmark: one real edgecore (child process) under a real cloudcore. Measures
 * edgecore's idle RSS/CPU with 0 and N process workloads, the time from an App update to the
 * new process running, cold start with the cloud down after kill -9, and the same idle RSS under
 * memory-saving V8 flag sets, plus where the memory goes (import cost probes). With
 * --containers N, a second edgecore on a throw-away Podman engine runs N container workloads
 * (idle footprint and update latency).
 *
 *   npm run bench:edge -- --processes 20 --idle-seconds 30
 */
import { parseBenchOptions, runGuarded } from '../harness.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { z } from 'zod';
import { startCloudcoreChild, type CloudcoreChild } from '../cloudcoreProcess.js';
import { ApiClient } from '../fleet.js';
import { clockTicksPerSecond, loadAverage } from '../procStats.js';
import { BENCH_LABEL, planKinds, processApp } from './benchWorkloads.js';
import { releaseContainers, runContainerPhase, type ContainerHoldings, type ContainerPhaseResult } from './containerPhase.js';
import { EdgecoreChild, freePort, type EdgecoreChildOptions } from './edgecoreChild.js';
import {
  coldStartSeries, spread, summaryText, targetCheck, warningsFor, type ColdStartSeries, type EdgeBenchReport, type VariantResult,
} from './edgeReport.js';
import { allRunning, reportedPids, runningCount } from './edgeStatus.js';
import { memoryProbes } from './memoryProbes.js';
import { measureColdStart, measureIdle, measureUpdate, type ColdStartSample } from './phases.js';
import { PidLedger } from './pidLedger.js';
import { bestFlagSet, coldStartCandidates, flagSetsNamed, type FlagSet } from './v8Variants.js';

const OptionsSchema = z.object({
  processes: z.coerce.number().int().min(1).max(500),
  containers: z.coerce.number().int().min(0).max(500),
  idleSeconds: z.coerce.number().min(1).max(3600),
  variantIdleSeconds: z.coerce.number().min(1).max(3600).optional(),
  updates: z.coerce.number().int().min(1).max(1000),
  coldStarts: z.coerce.number().int().min(1).max(100),
  heartbeatSeconds: z.coerce.number().min(1).max(3600),
  flagSets: z.string().optional(),
  probes: z.boolean(),
  timeoutSeconds: z.coerce.number().min(30).max(86_400),
});
type Options = z.infer<typeof OptionsSchema>;

const NODE = 'edge-bench-1';
const CONTAINER_NODE = 'edge-bench-ctr';
const log = (line: string) => process.stderr.write(`[edge ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

function parseOptions(argv: string[]): Options {
  const program = new Command('edge')
    .description('EdgeFleet edge benchmark: edgecore footprint, change latency, cold start, V8 flags')
    .option('--processes <n>', 'process workloads (one App each, bound to the node)', '20')
    .option('--containers <n>', 'container workloads, on a second edgecore with a throw-away Podman engine (0: skip)', '10')
    .option('--idle-seconds <n>', 'idle window for the footprint measurements', '30')
    .option('--variant-idle-seconds <n>', 'idle window per V8 flag set (default: --idle-seconds)')
    .option('--updates <n>', 'App updates to time', '10')
    .option('--cold-starts <n>', 'cold starts per flag set', '5')
    .option('--heartbeat-seconds <n>', 'edgecore heartbeat period', '30')
    .option('--flag-sets <names>', 'comma-separated V8 flag sets to try ("default" alone skips the comparison)')
    .option('--no-probes', 'skip the import-cost probes')
    .option('--timeout-seconds <n>', 'abort the whole run after this long', '1800');
  return parseBenchOptions('edge bench', program, OptionsSchema, argv);
}

/** Everything the run holds that must be released, whatever way it ends. */
class Resources {
  tempDir: string | undefined;
  cloud: CloudcoreChild | undefined;
  edge: EdgecoreChild | undefined;
  readonly containers: ContainerHoldings = { engine: undefined, edge: undefined };
  readonly ledger = new PidLedger();
  private released = false;

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.edge && !this.edge.exited()) {
      try { this.ledger.note(reportedPids(await this.edge.status())); } catch { /* status unreachable: the ledger has the rest */ }
      log(`stopping edgecore pid ${this.edge.pid} (SIGTERM; it stops its workloads)`);
      await this.edge.stop();
    }
    if (this.containers.edge || this.containers.engine) {
      log('stopping the container edgecore and removing the Podman engine');
      await releaseContainers(this.containers);
    }
    if (this.cloud && !this.cloud.exited()) {
      log('stopping cloudcore (SIGTERM)');
      await this.cloud.stop();
    }
    const left = this.ledger.killLeftovers();
    if (left > 0) log(`killed ${left} workload(s) left behind`);
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }
}

/** Spawn → exit of `node -e 0`: the floor under any edgecore cold start on this machine. */
async function nodeStartupMs(runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((resolve) => child.once('exit', resolve));
    times.push(performance.now() - t0);
  }
  return times;
}

interface Rig {
  opts: Options;
  res: Resources;
  api: ApiClient;
  names: string[];
  clockTicks: number;
  edgeOpts: (flags: readonly string[], logName: string) => EdgecoreChildOptions;
  timeoutMs: () => number;
}

/** SIGTERM the current edgecore and start one with `flags`; waits for all workloads (and the link, if `cloudUp`). */
async function restartEdge(rig: Rig, flags: readonly string[], logName: string, cloudUp: boolean): Promise<{ edge: EdgecoreChild; error: string | null }> {
  const { res } = rig;
  if (res.edge) {
    try { res.ledger.note(reportedPids(await res.edge.status())); } catch { /* already gone */ }
    await res.edge.stop();
  }
  const edge = EdgecoreChild.spawn(rig.edgeOpts(flags, logName));
  res.edge = edge;
  try {
    await edge.waitForLog('edgecore ready', 30_000);
    const seen = await edge.pollStatus((s) => allRunning(s, rig.names) && (!cloudUp || s.link.state === 'connected'), 30_000, 100);
    res.ledger.note(reportedPids(seen.status));
    return { edge, error: null };
  } catch (err) {
    return { edge, error: (err as Error).message.split('\n')[0]! };
  }
}

async function measureVariant(rig: Rig, set: FlagSet, seconds: number): Promise<VariantResult> {
  log(`flag set ${set.name}: ${set.flags.join(' ') || '(none)'}`);
  const { edge, error } = await restartEdge(rig, set.flags, `variant-${set.name}.log`, true);
  if (edge.exited()) throw new Error(`edgecore under ${set.flags.join(' ')} exited: ${edge.logTail()}`);
  const idle = await measureIdle(edge.pid, rig.clockTicks, seconds);
  const status = await edge.status();
  const running = runningCount(status, rig.names);
  const healthy = error === null && status.link.state === 'connected' && running === rig.names.length;
  log(`  RSS ${idle.rssEndMiB} MiB, CPU ${idle.cpuPercent}%, link ${status.link.state}, ${running} running`);
  return { name: set.name, flags: set.flags, healthy, linkState: status.link.state, running, error, idle };
}

async function coldStarts(rig: Rig, label: string, flags: readonly string[]): Promise<ColdStartSeries> {
  const samples: ColdStartSample[] = [];
  for (let i = 0; i < rig.opts.coldStarts; i++) {
    const previous = rig.res.edge!;
    const sample = await measureColdStart(previous, rig.edgeOpts(flags, `cold-${label}-${i}.log`), rig.names, rig.res.ledger, rig.clockTicks, rig.timeoutMs(),
      (edge) => { rig.res.edge = edge; });
    samples.push(sample);
    log(`  cold start ${i + 1}: ready ${sample.readyLogMs} ms, all running (status) ${sample.allRunningStatusMs} ms, orphans ${sample.orphansAtSpawn}→${sample.orphansLeft}`);
    await sleep(1000);
  }
  return coldStartSeries(label, [...flags], samples);
}

async function run(opts: Options, res: Resources, deadline: number): Promise<EdgeBenchReport> {
  const loadAverageStart = loadAverage();
  const kinds = planKinds(opts.processes, opts.containers);
  const names = kinds.find((k) => k.kind === 'process')!.appNames;
  const containerNames = kinds.find((k) => k.kind === 'container')?.appNames ?? [];
  const flagSets = flagSetsNamed(opts.flagSets ? opts.flagSets.split(',').map((s) => s.trim()).filter(Boolean) : null);
  const startup = await nodeStartupMs(5);

  const tempDir = mkdtempSync(join(tmpdir(), 'edgefleet-edge-bench-'));
  res.tempDir = tempDir;
  res.cloud = await startCloudcoreChild({
    dataDir: join(tempDir, 'cloudcore'), logPath: join(tempDir, 'cloudcore.log'),
    offlineAfterSeconds: Math.max(90, 3 * opts.heartbeatSeconds), readyTimeoutMs: 30_000,
  });
  const cloud = res.cloud;
  log(`cloudcore pid ${cloud.pid} at ${cloud.url}`);
  const api = new ApiClient(cloud.url, cloud.adminToken);
  const joinToken = await api.mintToken(NODE);
  await api.request('PATCH', `/nodes/${NODE}`, { metadata: { labels: { [BENCH_LABEL]: NODE } } });
  const statusPort = await freePort();
  const edgeDir = join(tempDir, 'edge');
  const rig: Rig = {
    opts, res, api, names, clockTicks: clockTicksPerSecond(),
    edgeOpts: (flags, logName) => ({
      node: NODE, cloudUrl: cloud.url, dataDir: edgeDir, logPath: join(tempDir, logName), statusPort,
      heartbeatSeconds: opts.heartbeatSeconds, nodeFlags: flags,
    }),
    timeoutMs: () => Math.max(5_000, deadline - Date.now()),
  };

  // 1. idle, 0 then N workloads (the first edgecore joins with the token).
  const first = EdgecoreChild.spawn({ ...rig.edgeOpts([], 'edge-join.log'), joinToken });
  res.edge = first;
  await first.waitForLog('edgecore ready', 30_000);
  await first.pollStatus((s) => s.link.state === 'connected', 30_000, 100);
  log(`edgecore pid ${first.pid} connected; idle ${opts.idleSeconds} s with 0 workloads`);
  const zeroWorkloads = await measureIdle(first.pid, rig.clockTicks, opts.idleSeconds);
  log(`  RSS ${zeroWorkloads.rssEndMiB} MiB, CPU ${zeroWorkloads.cpuPercent}%`);
  for (const name of names) await api.request('POST', '/apps', processApp(name, NODE, 1));
  const placed = await first.pollStatus((s) => allRunning(s, names), 60_000, 100);
  res.ledger.note(reportedPids(placed.status));
  log(`${names.length} workloads Running; idle ${opts.idleSeconds} s`);
  const withWorkloads = await measureIdle(first.pid, rig.clockTicks, opts.idleSeconds);
  log(`  RSS ${withWorkloads.rssEndMiB} MiB, CPU ${withWorkloads.cpuPercent}%, children ${withWorkloads.children.count} (${withWorkloads.children.rssMiB} MiB)`);

  // 2. desired change → running.
  const app = names[0]!;
  const updates = [];
  for (let i = 0; i < opts.updates; i++) {
    const sample = await measureUpdate(first, api, app, NODE, i + 2, res.ledger, rig.timeoutMs());
    updates.push(sample);
    log(`  update ${i + 1}: status ${sample.statusRunningMs} ms (edge running log ${sample.edgeRunningLogMs} ms)`);
    await sleep(300);
  }

  // 4a. V8 flag sets, each on a freshly restarted edgecore with the cloud up.
  const variants: VariantResult[] = [];
  for (const set of flagSets) variants.push(await measureVariant(rig, set, opts.variantIdleSeconds ?? opts.idleSeconds));
  const outcomes = variants.map((v) => ({ name: v.name, flags: v.flags, rssEndMiB: v.idle.rssEndMiB, healthy: v.healthy }));
  const best = bestFlagSet(outcomes);

  // 5. containers, on a node of their own, while the cloud is still up.
  let containers: ContainerPhaseResult | null = null;
  if (containerNames.length > 0) {
    containers = await runContainerPhase({
      api, cloudUrl: cloud.url, node: CONTAINER_NODE, names: containerNames, tempDir, statusPort: await freePort(),
      heartbeatSeconds: opts.heartbeatSeconds, idleSeconds: opts.idleSeconds, updates: opts.updates,
      clockTicks: rig.clockTicks, timeoutMs: rig.timeoutMs, log,
    }, res.containers);
    if (containers.skipped !== null) log(`containers: skipped: ${containers.skipped}`);
  }

  // 3. cold start with the cloud down (default flags, then the best set).
  log('stopping cloudcore for the cold starts');
  const cloudStop0 = performance.now();
  const cloudExit = await cloud.stop();
  const cloudStop = { ms: Math.round(performance.now() - cloudStop0), exitCode: cloudExit };
  log(`  cloudcore exited with ${cloudExit} after ${cloudStop.ms} ms`);
  const current = await restartEdge(rig, [], 'before-cold.log', false);
  if (current.error) throw new Error(`edgecore without cloud: ${current.error}`);
  log(`cold starts (${opts.coldStarts}), default flags`);
  const coldDefault = await coldStarts(rig, 'default', []);
  const coldWithFlags: ColdStartSeries[] = [];
  for (const candidate of coldStartCandidates(outcomes)) {
    log(`cold starts (${opts.coldStarts}), flag set ${candidate.name}`);
    coldWithFlags.push(await coldStarts(rig, candidate.name, candidate.flags));
  }

  // Stop edgecore now (it stops its workloads) so the probes run on a quiet machine.
  const edge = res.edge!;
  res.ledger.note(reportedPids(await edge.status()));
  await edge.stop();
  // edgecore's SIGTERM must have stopped every workload it ever ran; count (and kill) any that did not stop.
  const workloadsLeft = res.ledger.killLeftovers();

  let probes = null;
  if (opts.probes) {
    log('memory probes');
    probes = await memoryProbes(tempDir, best?.flags ?? null);
  }

  const partial = {
    idle: { zeroWorkloads, withWorkloads },
    v8Variants: variants,
    coldStart: { default: coldDefault, withFlags: coldWithFlags },
    loadAverageStart,
    cpus: availableParallelism(),
  };
  return {
    bench: 'edge',
    node: process.version,
    cpus: availableParallelism(),
    loadAverageStart,
    loadAverageEnd: loadAverage(),
    heartbeatSeconds: opts.heartbeatSeconds,
    kinds: kinds.map((k) => ({ kind: k.kind, count: k.count, skipped: k.kind === 'container' ? containers?.skipped ?? null : k.skipped })),
    workloads: names.length,
    nodeStartupMs: spread(startup),
    idle: partial.idle,
    update: {
      app, samples: updates,
      putMs: spread(updates.map((u) => u.putMs)),
      statusRunningMs: spread(updates.map((u) => u.statusRunningMs)),
      edgeFirstLogMs: spread(updates.map((u) => u.edgeFirstLogMs)),
      edgeRunningLogMs: spread(updates.map((u) => u.edgeRunningLogMs)),
    },
    v8Variants: variants,
    bestFlagSet: best?.name ?? null,
    coldStart: partial.coldStart,
    containers,
    memoryProbes: probes,
    targets: targetCheck(withWorkloads, coldDefault),
    cloudStop,
    cleanup: { workloadsLeftAfterStop: workloadsLeft },
    warnings: [
      ...warningsFor(partial),
      ...(cloudStop.exitCode !== 0 ? [`cloudcore did not exit on SIGTERM with an edge connected (exit ${cloudStop.exitCode} after ${cloudStop.ms} ms; -1 = SIGKILLed after the 15 s grace)`] : []),
      ...(workloadsLeft > 0 ? [`${workloadsLeft} workload(s) were still alive after edgecore's SIGTERM`] : []),
      ...(containers?.error ? [`container phase failed: ${containers.error}`] : []),
      ...((containers?.figures?.containersLeftAfterStop ?? 0) > 0 ? [`${containers!.figures!.containersLeftAfterStop} container(s) left in the engine after the apps were deleted and edgecore stopped`] : []),
    ],
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
    diagnostics: () => [
      `edgecore log tail:\n${res.edge?.logTail() ?? '(not started)'}`,
      res.cloud && !res.cloud.exited() ? `cloudcore log tail:\n${res.cloud.logTail()}` : '',
    ].filter(Boolean).join('\n'),
    run: () => run(opts, res, deadline),
    summary: summaryText,
  });
}

await main();
