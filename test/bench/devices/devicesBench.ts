#!/usr/bin/env node
/**
 * Devices benchmark (issue 4): N devices (mqtt.js, spread over a few load processes) publish
 * QoS 1 `ef/devices/<id>/twin/reported` (and every n-th time a `telemetry` sample) against the edge's DeviceHub (own process, upstream into
 * a real MetaStore outbox), then the same load against Debian's mosquitto with one subscriber.
 * Measures persisted (resp. delivered) updates/s, device→twin latency, broker RSS/CPU and the
 * machine's load, and prints them beside the targets.
 *
 *   npm run bench:devices -- --devices 1000 [--seconds 20] [--rounds 3] [--hub-cpu-prof <dir>]
 *     [--app-subscribers 10 --route mqtt]   (issue 24: local apps reading the telemetry, one route forwarding it)
 *   npm run bench:devices -- --target edgecore --route cloud --devices 1000 --app-subscribers 10
 *     (issue 24 as worded: a real cloudcore and a joined edgecore set up through the REST API, the
 *     route to the cloud's own store; edgecoreTarget.ts)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { z } from 'zod';
import { hashPassword } from '../../../edgecore/devices/broker/deviceCredentials.js';
import { parseBenchOptions } from '../harness.js';
import { clockTicksPerSecond, loadAverage, openFilesLimit } from '../procStats.js';
import { benchDevices, deviceNames } from './benchDevices.js';
import {
  Resources, pacedPhase, saturatedPhase, startDeviceHub, startMosquittoTarget, type RunSettings, type TargetSession, type TargetTimes,
} from './benchTargets.js';
import { hubOnlyFlagsProblem, targetRouteProblem } from './cloudRoute.js';
import { startEdgecoreTarget } from './edgecoreTarget.js';
import { probeSyncedCommits } from './diskProbe.js';
import { median, summaryText, targetChecks, type DevicesBenchReport, type PhaseResult } from './devicesReport.js';
import { MOSQUITTO_BIN } from './mosquittoProcess.js';
import { attachHubLocalApps, attachMosquittoLocalApps, hubExtras, startRouteDestination, type LocalAppsOptions } from './localApps.js';

const OptionsSchema = z.object({
  devices: z.coerce.number().int().min(1).max(20_000),
  seconds: z.coerce.number().min(1).max(600),
  rounds: z.coerce.number().int().min(1).max(20),
  warmupSeconds: z.coerce.number().min(0).max(60).optional(),
  loaders: z.coerce.number().int().min(1).max(16),
  loaderNice: z.coerce.number().int().min(0).max(19),
  inflight: z.coerce.number().int().min(1).max(100),
  pacedRate: z.coerce.number().min(1).max(1_000_000).optional(),
  pacedFraction: z.coerce.number().gt(0).max(1),
  pacedInflight: z.coerce.number().int().min(1).max(1000),
  skipPaced: z.boolean().default(false),
  maxMessages: z.coerce.number().int().min(1).max(100_000_000),
  telemetryEvery: z.coerce.number().int().min(0).max(1_000_000),
  connectConcurrency: z.coerce.number().int().min(1).max(10_000),
  subscriberQos: z.coerce.number().int().min(0).max(1).transform((q) => (q === 0 ? 0 : 1) as 0 | 1),
  skipMosquitto: z.boolean().default(false),
  hubCpuProf: z.string().min(1).optional(),
  hubLiteMode: z.boolean().default(false),
  hubNodeFlag: z.array(z.string().regex(/^--[a-z0-9-]+(=[\w.-]+)?$/, 'must be a node/V8 flag such as --max-semi-space-size=1')).default([]),
  hubMaxBatch: z.coerce.number().int().min(1).max(100_000).optional(),
  hubTwinUpstreamMs: z.coerce.number().int().min(0).max(60_000).optional(),
  dbDir: z.string().min(1).optional(),
  appSubscribers: z.coerce.number().int().min(0).max(100),
  appSubscriberProcesses: z.coerce.number().int().min(1).max(10),
  target: z.enum(['hub', 'edgecore'], { message: 'must be hub (the DeviceHub in a child process) or edgecore (cloudcore + a joined edgecore)' }),
  route: z.enum(['mqtt', 'cloud', 'none'], { message: 'must be mqtt (hub target), cloud (edgecore target) or none' }),
  restConcurrency: z.coerce.number().int().min(1).max(64),
  routeRate: z.coerce.number().int().min(1).max(100_000),
  routeMaxQueued: z.coerce.number().int().min(1).max(1_000_000),
  timeoutSeconds: z.coerce.number().min(30).max(86_400),
});
type Options = z.infer<typeof OptionsSchema>;

function parseOptions(argv: string[]): Options {
  const program = new Command('devicesBench')
    .description('EdgeFleet devices benchmark: DeviceHub vs mosquitto under N MQTT devices reporting at QoS 1')
    .option('--devices <n>', 'simulated devices (one MQTT connection each)', '1000')
    .option('--seconds <n>', 'sending time of each phase', '20')
    .option('--rounds <n>', 'saturated phases per target, the DeviceHub\'s and mosquitto\'s taking turns; the ratio is the median of the rounds\' ratios', '3')
    .option('--warmup-seconds <n>', 'start of each phase left out of the steady-state window (default: min(2, seconds/5))')
    .option('--loaders <n>', 'load generator processes the devices are spread over', '2')
    .option('--loader-nice <n>', 'nice value of the load generators (0-19; 0: the brokers\' priority). Not neutral: see docs/benchmarks.md, session 11', '0')
    .option('--inflight <n>', 'saturated phase: unacked publishes kept per device', '1')
    .option('--paced-rate <n>', 'paced phase: aggregate reports/s (default: --paced-fraction of the DeviceHub saturated rate)')
    .option('--paced-fraction <x>', 'paced phase rate as a share of the DeviceHub saturated rate', '0.5')
    .option('--paced-inflight <n>', 'paced phase: a device with this many unacked publishes skips its turn', '8')
    .option('--skip-paced', 'run the saturated phase only')
    .option('--telemetry-every <n>', 'every n-th publish of a device is a telemetry sample instead of a twin report (0: reports only)', '5')
    .option('--max-messages <n>', 'bound on publishes per phase, over all devices', '5000000')
    .option('--connect-concurrency <n>', 'connections being set up at once, over all loaders', '50')
    .option('--subscriber-qos <n>', 'QoS of the mosquitto subscriber (0 or 1)', '1')
    .option('--skip-mosquitto', 'measure the DeviceHub only')
    .option('--db-dir <dir>', 'parent of the temp dir holding the hub\'s database (twins + outbox) (default: the OS temp dir; /dev/shm shows the hub without disk syncs)')
    .option('--hub-max-batch <n>', 'most device messages the hub commits in one transaction (default: the hub\'s, 1000)')
    .option('--hub-twin-upstream-ms <n>', 'the hub\'s twin upstream interval: a device\'s newest state goes to the outbox at most this often (default: the hub\'s, 500; 0 = with every report)')
    .option('--hub-lite-mode', 'run the DeviceHub child with node --lite-mode, as the edgecore binary runs (no optimizing JIT)')
    .option('--hub-node-flag <flag...>', 'more node/V8 flags for the DeviceHub child (e.g. --hub-node-flag=--no-opt)')
    .option('--app-subscribers <n>', 'issue 24: local apps subscribed to ef/devices/+/telemetry (hub: each with its own app credential and grant; mosquitto: plain subscribers)', '0')
    .option('--app-subscriber-processes <n>', 'processes the app subscribers are spread over (on each broker)', '2')
    .option('--target <kind>', 'the edge side under test: hub (the DeviceHub alone in a child process) or edgecore (a real cloudcore and a joined edgecore, set up through the REST API)', 'hub')
    .option('--route <kind>', 'issue 24: a route of the telemetry off the node: mqtt (hub target: to a second mosquitto, run by edgecore\'s RouteEngine in the hub child), cloud (edgecore target: to the cloud\'s own store) or none', 'none')
    .option('--rest-concurrency <n>', 'edgecore target: device registrations in flight (each costs the cloud one scrypt)', '8')
    .option('--route-rate <n>', 'the route\'s maxMessagesPerSecond (the product\'s default is 100; the bench asks for its maximum to see what the route carries)', '100000')
    .option('--route-max-queued <n>', 'the route\'s maxQueuedMessages (the product\'s default)', '10000')
    .option('--hub-cpu-prof <dir>', 'run the DeviceHub child under node --cpu-prof (profile in <dir>) and print its top functions')
    .option('--timeout-seconds <n>', 'abort the whole run after this long', '1200');
  const opts = parseBenchOptions('devicesBench', program, OptionsSchema, argv);
  const problem = targetRouteProblem(opts.target, opts.route) ?? hubOnlyFlagsProblem(opts.target, {
    hubCpuProf: opts.hubCpuProf !== undefined, hubNodeFlags: opts.hubLiteMode || opts.hubNodeFlag.length > 0,
    hubMaxBatch: opts.hubMaxBatch !== undefined, hubTwinUpstreamMs: opts.hubTwinUpstreamMs !== undefined,
  });
  if (problem !== null) {
    process.stderr.write(`devicesBench: ${problem}\n`);
    process.exit(2);
  }
  return opts;
}

const log = (line: string) => process.stderr.write(`[devices ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const CPU_PROFILE_TOP = fileURLToPath(new URL('../cpuProfileTop.js', import.meta.url));

/** The top functions of the hub's profile within its saturated phase, via cpuProfileTop. */
function profileTop(dir: string, times: TargetTimes): { file: string; top: string } | null {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (files.length === 0) return null;
  // The profile starts when the child's V8 starts, within ~100 ms of the fork.
  const from = Math.max(0, times.saturateFrom - times.spawnedAt);
  const to = Math.max(from + 1, times.saturateTo - times.spawnedAt);
  const top = execFileSync(process.execPath, [CPU_PROFILE_TOP, files[0]!, '--from-ms', String(from), '--to-ms', String(to), '--top', '25'], {
    encoding: 'utf8', maxBuffer: 16 * 2 ** 20,
  });
  return { file: files[0]!, top };
}

const noApps: LocalAppsOptions = { appSubscribers: 0, subscriberProcesses: 1, route: 'none', routeMaxMessagesPerSecond: 100, routeMaxQueuedMessages: 10_000, qos: 1 };

/** The hub child, with issue 24's local apps and MQTT route when asked for. */
async function startHubTarget(settings: RunSettings, res: Resources, localApps: LocalAppsOptions | null): Promise<TargetSession> {
  const destination = localApps?.route === 'mqtt' ? await startRouteDestination(settings, res) : null;
  if (localApps) settings.hubExtras = hubExtras(localApps, destination?.url ?? null);
  const hub = await startDeviceHub(settings, res);
  if (localApps) await attachHubLocalApps(settings, hub, res, localApps, destination);
  return hub;
}

async function run(opts: Options, res: Resources, dir: string, hubDbDir: string, started: number): Promise<DevicesBenchReport> {
  const limit = openFilesLimit();
  if (limit !== undefined && opts.devices + 200 > limit) {
    throw new Error(`--devices ${opts.devices} needs about ${opts.devices + 200} open files per process, the limit is ${limit} (ulimit -n)`);
  }
  const loadAverageStart = loadAverage();
  const diskBefore = probeSyncedCommits(hubDbDir, 2);
  log(`disk: ${diskBefore.commitsPerSecond} synced commits/s`);
  const password = 'bench-device-password';
  log('hashing the shared device password (scrypt, once)');
  const credentialHash = await hashPassword(password);
  const names = deviceNames(opts.devices);
  const devicesFile = join(dir, 'devices.json');
  writeFileSync(devicesFile, JSON.stringify(benchDevices(names, credentialHash)));
  const hubCpuProfDir = opts.hubCpuProf ? resolve(opts.hubCpuProf) : null;
  if (hubCpuProfDir) mkdirSync(hubCpuProfDir, { recursive: true });
  const warmupSeconds = opts.warmupSeconds ?? Math.min(2, opts.seconds / 5);
  const phaseBase = { seconds: opts.seconds, warmupSeconds, maxMessages: opts.maxMessages, telemetryEvery: opts.telemetryEvery };
  const settings: RunSettings = {
    dir, hubDbDir, devices: names, devicesFile, password, t0Ms: Date.now(), loaders: Math.min(opts.loaders, opts.devices), loaderNice: opts.loaderNice,
    connectConcurrency: opts.connectConcurrency, clockTicks: clockTicksPerSecond(),
    saturate: { ...phaseBase, inflight: opts.inflight },
    paced: opts.skipPaced ? null : { ...phaseBase, inflight: opts.pacedInflight },
    subscriberQos: opts.subscriberQos, hubCpuProfDir, hubNodeFlags: [...(opts.hubLiteMode ? ['--lite-mode'] : []), ...opts.hubNodeFlag],
    ...(opts.hubMaxBatch !== undefined ? { hubMaxBatch: opts.hubMaxBatch } : {}),
    ...(opts.hubTwinUpstreamMs !== undefined ? { hubTwinUpstreamMs: opts.hubTwinUpstreamMs } : {}), log,
  };
  // Both brokers are up at once and their saturated phases take turns, so a slow minute of the
  // shared host weighs on both; the paced phases follow, at one rate for both.
  const localApps: LocalAppsOptions | null = opts.appSubscribers > 0 || opts.route !== 'none' ? {
    appSubscribers: opts.appSubscribers, subscriberProcesses: opts.appSubscriberProcesses, route: opts.route,
    routeMaxMessagesPerSecond: opts.routeRate, routeMaxQueuedMessages: opts.routeMaxQueued, qos: opts.subscriberQos,
  } : null;
  const hub = opts.target === 'edgecore'
    ? await startEdgecoreTarget(settings, res, { apps: { ...(localApps ?? noApps), route: opts.route === 'cloud' ? 'cloud' : 'none' }, restConcurrency: opts.restConcurrency })
    : await startHubTarget(settings, res, localApps);
  const mosquitto = opts.skipMosquitto ? null : await startMosquittoTarget(settings, res);
  if (localApps && mosquitto) await attachMosquittoLocalApps(settings, mosquitto, res, localApps);
  const hubPhases: PhaseResult[] = [];
  const mosquittoPhases: PhaseResult[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    if (opts.rounds > 1) log(`round ${round} of ${opts.rounds}`);
    hubPhases.push(await saturatedPhase(settings, hub));
    if (mosquitto) mosquittoPhases.push(await saturatedPhase(settings, mosquitto));
  }
  if (settings.paced) {
    const rate = opts.pacedRate ?? opts.pacedFraction * median(hubPhases.map((p) => p.measured.perSecond));
    hubPhases.push(await pacedPhase(settings, hub, rate));
    if (mosquitto) mosquittoPhases.push(await pacedPhase(settings, mosquitto, rate));
  }
  const hubResult = await hub.finish(hubPhases);
  const mosquittoResult = mosquitto ? await mosquitto.finish(mosquittoPhases) : null;
  const hubCpuProfile = hubCpuProfDir ? profileTop(hubCpuProfDir, hub.times) : null;
  const disk = { before: diskBefore, after: probeSyncedCommits(hubDbDir, 2) };
  return {
    bench: 'devices', devices: opts.devices, seconds: opts.seconds, loaders: settings.loaders, loaderNice: settings.loaderNice,
    node: process.version, cpus: availableParallelism(), loadAverageStart, loadAverageEnd: loadAverage(),
    target: opts.target, rounds: opts.rounds, hubNodeFlags: settings.hubNodeFlags, devicehub: hubResult, mosquitto: mosquittoResult,
    targets: targetChecks(hubResult, mosquittoResult), hubCpuProfile, disk, hubDbDir: settings.hubDbDir, ...(localApps ? { localApps } : {}),
    totalSeconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv);
  if (!opts.skipMosquitto) {
    try {
      statSync(MOSQUITTO_BIN);
    } catch {
      process.stderr.write(`devicesBench: ${MOSQUITTO_BIN} not found (apt-get install mosquitto, or --skip-mosquitto)\n`);
      process.exit(2);
    }
  }
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'edgefleet-devices-bench-'));
  let hubDbDir: string;
  try {
    hubDbDir = mkdtempSync(join(opts.dbDir ? resolve(opts.dbDir) : dir, 'edgefleet-devicehub-db-'));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const res = new Resources();
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await res.releaseAll();
    rmSync(hubDbDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  const abort = (why: string, code: number) => {
    log(why);
    setTimeout(() => process.exit(code), 45_000).unref();
    void release().finally(() => process.exit(code));
  };
  const watchdog = setTimeout(() => abort(`ABORTED: the run exceeded --timeout-seconds ${opts.timeoutSeconds}`, 3), opts.timeoutSeconds * 1000);
  process.once('SIGINT', () => abort('interrupted', 130));
  process.once('SIGTERM', () => abort('terminated', 143));
  try {
    const report = await run(opts, res, dir, hubDbDir, started);
    clearTimeout(watchdog);
    await release();
    process.stdout.write(`${summaryText(report)}\n`);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } catch (err) {
    clearTimeout(watchdog);
    log(`FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    if (res.mosquitto) log(`mosquitto log tail:\n${res.mosquitto.logTail()}`);
    await release();
    process.exitCode = 1;
  }
}

await main();
