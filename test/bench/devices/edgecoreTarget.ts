import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EdgeStatusSchema, type EdgeStatus } from '../../../protocol/index.js';
import { startCloudcoreChild, type CloudcoreChild } from '../cloudcoreProcess.js';
import { EdgecoreChild, freePort } from '../edge/edgecoreChild.js';
import { ApiClient } from '../fleet.js';
import { round, sampleProcess } from '../procStats.js';
import { BENCH_NODE } from './benchDevices.js';
import { publisherAcks, startLoaders } from './benchPhases.js';
import type { Resources, RunSettings, TargetSession } from './benchTargets.js';
import { brokerLoginOf, parseEnviron, type WorkloadBrokerLogin } from './cloudRoute.js';
import { CloudRouteReader, EdgeReadySchema, cloudRouteCounters, createApps, createCloudRoute, labelNode, registerDevices } from './cloudApi.js';
import type { PhaseResult, TargetResult } from './devicesReport.js';
import { APP_TELEMETRY_FILTER, BENCH_ROUTE, appWorkloadNames, groupCounters, mergedGroups, routeFigures, startGroups, wrapFinish, type LocalAppsOptions } from './localApps.js';
import type { ProcessGroup } from './machineLoad.js';

/**
 * Issue 24's benchmark as the issue words it (`--target edgecore`): a real cloudcore (SQLite
 * store) and a real edgecore joined to it, each its own process, set up only through the
 * cloud's REST API as an operator would: the devices on the node, app workloads whose template
 * asks for `mqtt: {subscribe: ['ef/devices/+/telemetry']}` (processes that only sleep: the
 * bench's subscribers log in with the credential edgecore gave each of them, read from the
 * workload's own environment), and one Route of the telemetry to the cloud. The loaders then
 * drive edgecore's device broker as they drive the hub child. "Routed" is what the cloud
 * stored, read back from `GET /routes/{r}/messages` and timed by the cloud's receipt.
 */

export interface EdgecoreTargetOptions {
  apps: LocalAppsOptions & { route: 'cloud' | 'none' };
  /** REST calls in flight while registering devices (each costs the cloud one scrypt). */
  restConcurrency: number;
}

/** Bounds of the set-up waits (the whole run is bounded by --timeout-seconds as well). */
const READY_MS = 90_000;
/**
 * Per connection, and (plus 100 ms a device) per loader: every device has its own password, so
 * each first login costs the edge one scrypt; 1000 of them took ~3 min on the loaded 2-core host.
 */
const CONNECT_TIMEOUT_MS = 300_000;

async function fetchStatus(statusUrl: string): Promise<EdgeStatus> {
  const res = await fetch(`${statusUrl}/status`, { signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`edgecore GET /status: HTTP ${res.status}`);
  return EdgeStatusSchema.parse(await res.json());
}

/** Polls `probe` every `intervalMs` until it returns a value, at most `timeoutMs`; stops early when edgecore exits. */
async function until<T>(what: string, edge: EdgecoreChild, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (edge.exited()) throw new Error(`edgecore exited while waiting for ${what}:\n${edge.logTail()}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}:\n${edge.logTail()}`);
    await sleep(intervalMs);
  }
}

/** What a running workload was given to reach the broker, read from its process as it reads it (EF_MQTT_*). */
function workloadLogin(name: string, pid: number): WorkloadBrokerLogin {
  const login = brokerLoginOf(parseEnviron(readFileSync(`/proc/${pid}/environ`, 'utf8')));
  if (typeof login === 'string') throw new Error(`workload ${name} (pid ${pid}): ${login}`);
  return login;
}

function killGroups(pids: Iterable<number>): void {
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try { process.kill(target, 'SIGKILL'); } catch { /* gone already, or not a group leader */ }
    }
  }
}

/** cloudcore and edgecore up, the edge joined and labelled; both registered with `res` for release. */
async function startFleet(s: RunSettings, res: Resources): Promise<{ cloud: CloudcoreChild; edge: EdgecoreChild; api: ApiClient; mqttPort: number; workloadPids: Set<number> }> {
  const cloudDir = join(s.hubDbDir, 'cloud');
  const edgeDir = join(s.hubDbDir, 'edge');
  mkdirSync(cloudDir, { recursive: true });
  const cloud = await startCloudcoreChild({ dataDir: cloudDir, logPath: join(s.dir, 'cloudcore.log'), offlineAfterSeconds: 30, readyTimeoutMs: READY_MS });
  res.processes.push({ name: 'cloudcore', stop: () => cloud.stop() });
  const api = new ApiClient(cloud.url, cloud.adminToken);
  const edge = EdgecoreChild.spawn({
    node: BENCH_NODE, cloudUrl: cloud.url, dataDir: edgeDir, logPath: join(s.dir, 'edgecore.log'),
    statusPort: await freePort(), heartbeatSeconds: 5, joinToken: await api.mintToken(BENCH_NODE), mqttPort: 0,
  });
  const workloadPids = new Set<number>();
  // Stopped before cloudcore (unshift): edgecore stops its workloads; any left are killed by pid.
  res.processes.unshift({ name: 'edgecore', stop: async () => { await edge.stop(); killGroups(workloadPids); } });
  const ready = EdgeReadySchema.parse(await edge.waitForLog('edgecore ready', READY_MS));
  s.log(`cloudcore pid ${cloud.pid} (${cloud.url}), edgecore pid ${edge.pid} (broker ${ready.mqttUrl})`);
  await until('the node in the cloud', edge, READY_MS, async () => ((await fetchStatus(edge.statusUrl)).link.state === 'connected' ? true : undefined));
  await labelNode(api, BENCH_NODE);
  return { cloud, edge, api, mqttPort: Number(new URL(ready.mqttUrl).port), workloadPids };
}

export async function startEdgecoreTarget(s: RunSettings, res: Resources, opts: EdgecoreTargetOptions): Promise<TargetSession> {
  const { cloud, edge, api, mqttPort, workloadPids } = await startFleet(s, res);
  const status = () => fetchStatus(edge.statusUrl);
  const t = Date.now();
  const passwords = await registerDevices(api, BENCH_NODE, s.devices, opts.restConcurrency, s.log);
  s.log(`${s.devices.length} devices registered in ${Date.now() - t} ms`);
  const workloads = appWorkloadNames(opts.apps.appSubscribers);
  await createApps(api, workloads);
  if (opts.apps.route === 'cloud') {
    await createCloudRoute(api, { maxMessagesPerSecond: opts.apps.routeMaxMessagesPerSecond, maxQueuedMessages: opts.apps.routeMaxQueuedMessages });
  }
  const ready = await until('devices, workloads and route on the edge', edge, READY_MS + s.devices.length * 100, async () => {
    const st = await status();
    const pids = workloads.map((w) => st.workloads.find((x) => x.name === w)?.status).map((ws) => (ws?.state === 'Running' ? ws.pid ?? undefined : undefined));
    const route = st.routes?.find((r) => r.route === BENCH_ROUTE);
    if ((st.mqtt?.devices.length ?? 0) < s.devices.length || pids.some((p) => p === undefined)) return undefined;
    if (opts.apps.route === 'cloud' && route?.connected !== true) return undefined;
    return pids as number[];
  });
  ready.forEach((pid) => workloadPids.add(pid));
  s.log(`edgecore: ${s.devices.length} devices, ${workloads.length} app workloads running${opts.apps.route === 'cloud' ? ', cloud route up' : ''}; connecting the devices`);

  const loaders = await startLoaders({
    count: s.loaders, nice: s.loaderNice, devices: s.devices, port: mqttPort, password: s.password, passwords,
    t0Ms: s.t0Ms, concurrency: s.connectConcurrency, timeoutMs: CONNECT_TIMEOUT_MS,
  }, (rpc) => res.children.push(rpc));
  await until('every device online', edge, 60_000, async () => ((await status()).mqtt?.devices.filter((d) => d.online).length === s.devices.length ? true : undefined), 200);
  const brokerRssIdleMiB = round(sampleProcess(edge.pid, s.clockTicks).rssBytes / 2 ** 20, 1);
  s.log(`edgecore: connected in ${loaders.connectMs} ms, RSS ${brokerRssIdleMiB} MiB (cloudcore ${round(sampleProcess(cloud.pid, s.clockTicks).rssBytes / 2 ** 20, 1)} MiB)`);

  const groups: ProcessGroup[] = [
    { label: 'edgecore', pids: [edge.pid] },
    { label: 'cloudcore', pids: [cloud.pid] },
    { label: 'loaders', pids: loaders.rpcs.map((r) => r.pid) },
    { label: 'bench', pids: [], self: true },
  ];
  const stopFleet = async () => {
    for (const p of res.processes.filter((x) => x.name === 'edgecore' || x.name === 'cloudcore')) {
      await p.stop();
      res.processes.splice(res.processes.indexOf(p), 1);
    }
  };
  const finish = async (phases: PhaseResult[]): Promise<TargetResult> => {
    const acked = phases.reduce((sum, p) => sum + p.loaders.acked, 0);
    const telemetryAcked = phases.reduce((sum, p) => sum + p.loaders.telemetryAcked, 0);
    const st = await status();
    const warnings: string[] = [];
    const reportedVersionSum = st.mqtt?.devices.reduce((sum, d) => sum + d.reportedVersion, 0) ?? 0;
    // Every bench report changes its twin (the send time is a property), so each acked one is a version.
    if (reportedVersionSum !== acked - telemetryAcked) warnings.push(`${acked - telemetryAcked} reports were acked but the twins hold ${reportedVersionSum} reported updates`);
    if (st.outbox.dropped > 0) warnings.push(`the edge's outbox dropped ${st.outbox.dropped} entries`);
    if (st.link.state !== 'connected') warnings.push(`the cloud link was ${st.link.state} at the end`);
    await res.releaseChildren(loaders.rpcs);
    // Stopped here, once every counter was read (wrapFinish reads the apps' and the route's first).
    await stopFleet();
    return {
      target: 'edgecore', connectMs: loaders.connectMs, brokerRssIdleMiB, phases,
      consumerCounters: {
        publishesAcked: acked, received: st.mqtt?.messages.received ?? 0, refused: st.mqtt?.messages.refused ?? 0, reportedVersionSum,
        outboxDepth: st.outbox.depth, outboxDropped: st.outbox.dropped, upstreamCommits: st.mqtt?.commits?.transactions ?? 0,
        linkUpstreamSent: st.link.stats?.upstreamSent ?? 0, linkBytesOut: st.link.stats?.bytesOut ?? 0,
      },
      warnings,
    };
  };
  const session: TargetSession = {
    target: 'edgecore', port: mqttPort, loaders: loaders.rpcs, consumer: publisherAcks(loaders.rpcs), groups, connectMs: loaders.connectMs, brokerRssIdleMiB,
    times: { spawnedAt: edge.spawnedAt, saturateFrom: 0, saturateTo: 0 }, finish,
    commitCounts: async () => {
      const commits = (await status()).mqtt?.commits;
      return { transactions: commits?.transactions ?? 0, items: commits?.items ?? 0 };
    },
  };
  await attachEdgecoreLocalApps(s, session, res, opts, { edge, api, workloads, ready, status });
  return session;
}

/** The app subscribers (logged in as the workloads) and the cloud's store of the route, as consumers of every phase. */
async function attachEdgecoreLocalApps(s: RunSettings, t: TargetSession, res: Resources, opts: EdgecoreTargetOptions, fleet: {
  edge: EdgecoreChild; api: ApiClient; workloads: string[]; ready: number[]; status: () => Promise<EdgeStatus>;
}): Promise<void> {
  const logins = fleet.workloads.map((w, i) => workloadLogin(w, fleet.ready[i]!));
  for (const login of logins) {
    if (Number(new URL(login.url).port) !== t.port) throw new Error(`${login.username}: EF_MQTT_URL ${login.url} is not the broker on port ${t.port}`);
  }
  const apps = logins.length > 0
    ? await startGroups('app-subscribers', t.port, logins.map((l) => ({ clientId: l.username, username: l.username, passwordFile: l.passwordFile })),
      [APP_TELEMETRY_FILTER], opts.apps.subscriberProcesses, s, opts.apps.qos, res)
    : [];
  if (apps.length > 0) t.groups.push({ label: 'app subscribers', pids: apps.map((r) => r.pid) });
  const reader = opts.apps.route === 'cloud' ? new CloudRouteReader(fleet.api, s.t0Ms) : null;
  const counters = async (): Promise<Record<string, number>> => {
    if (fleet.edge.exited()) return {};
    const st = await fleet.status();
    const grants = st.mqtt?.appGrants ?? [];
    return {
      appDelivered: grants.reduce((sum, g) => sum + g.delivered, 0), appRefused: grants.reduce((sum, g) => sum + g.refused, 0),
      ...routeFigures(st.routes?.find((r) => r.route === BENCH_ROUTE)),
      ...(reader ? { routeCloudStored: await reader.poll(), ...(await cloudRouteCounters(fleet.api, BENCH_NODE)) } : {}),
    };
  };
  t.extras = {
    consumers: { ...(apps.length > 0 ? { 'app subscribers': mergedGroups(apps) } : {}), ...(reader ? { 'route destination': reader } : {}) },
    counters,
  };
  wrapFinish(t, async () => {
    const final = await counters();
    const warnings: string[] = [];
    const appStats = apps.length > 0 ? await groupCounters(apps) : null;
    if (appStats && appStats.disconnects > 0) warnings.push(`app subscribers were disconnected ${appStats.disconnects} times`);
    if (reader && reader.missing > 0) warnings.push(`${reader.missing} routed messages were trimmed from the cloud's store before the bench read them`);
    if (reader && reader.unreadable > 0) warnings.push(`${reader.unreadable} routed messages in the cloud carried no send time`);
    if (reader && final.routeForwarded !== undefined && reader.stored + reader.missing !== final.routeForwarded) {
      warnings.push(`the edge counted ${final.routeForwarded} forwarded, the cloud stored ${reader.stored + reader.missing}`);
    }
    await res.releaseChildren(apps);
    return {
      counters: { ...final, ...(appStats ? { appSubscribersReceived: appStats.received } : {}), ...(reader ? { routeCloudStored: reader.stored, routeCloudMissing: reader.missing } : {}) },
      warnings,
    };
  });
}
