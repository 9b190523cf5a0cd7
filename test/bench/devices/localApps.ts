import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { NodeRouteSchema, RouteCountersSchema, type MqttGrant, type NodeRoute } from '../../../protocol/index.js';
import { appUsername } from '../../../edgecore/devices/apps/appAccess.js';
import { BENCH_NODE, splitEvenly } from './benchDevices.js';
import type { PhaseConsumer } from './benchPhases.js';
import type { Resources, RunSettings, TargetSession } from './benchTargets.js';
import { ChildRpc } from './childRpc.js';
import type { TargetResult } from './devicesReport.js';
import { LatencyRecorder } from './latencyRecorder.js';
import { startMosquitto } from './mosquittoProcess.js';

/**
 * Issue 24's load beside the devices: local apps subscribed to every device's telemetry (on the
 * hub with real app identities, on mosquitto as plain subscribers to the same filter) and one
 * route forwarding that telemetry off the node, run by edgecore's RouteEngine inside the hub's
 * process. The route's destination is a second mosquitto, read by one subscriber: the hub child
 * has no cloud link (it runs the DeviceHub, not a joined edgecore), so this route goes to an
 * operator's MQTT broker. The route to the cloud itself is the edgecore target's
 * (`--target edgecore --route cloud`, edgecoreTarget.ts), which reuses the subscriber groups here.
 */

const GROUP_MODULE = fileURLToPath(new URL('./subscriberGroupChild.js', import.meta.url));

export interface LocalAppsOptions {
  /** Subscribers to `ef/devices/+/telemetry` (0: none, the bench as before issue 24). */
  appSubscribers: number;
  /** Processes the subscribers are spread over. */
  subscriberProcesses: number;
  /** mqtt: the hub target's route to a second mosquitto; cloud: the edgecore target's route to the cloud (edgecoreTarget.ts). */
  route: 'mqtt' | 'cloud' | 'none';
  routeMaxMessagesPerSecond: number;
  routeMaxQueuedMessages: number;
  qos: 0 | 1;
}

export const APP_TELEMETRY_FILTER = 'ef/devices/+/telemetry';
export const ROUTE_TOPIC_PREFIX = 'routed/';
export const BENCH_ROUTE = 'bench-telemetry';
/** What an app may do: read every device's telemetry, nothing else (least privilege, as a real workload would ask). */
export const BENCH_APP_GRANT: MqttGrant = { publish: [], subscribe: [APP_TELEMETRY_FILTER] };

/** bench-app-01 …: the workloads whose credentials the hub makes. */
export function appWorkloadNames(count: number): string[] {
  const width = Math.max(2, String(count).length);
  return Array.from({ length: count }, (_, i) => `bench-app-${String(i + 1).padStart(width, '0')}`);
}

/** The NodeRoute the cloud would bind to the bench's node: telemetry → an MQTT broker on loopback, plain MQTT. */
export function benchNodeRoute(url: string, limits: { maxMessagesPerSecond: number; maxQueuedMessages: number }): NodeRoute {
  return NodeRouteSchema.parse({
    kind: 'NodeRoute', metadata: { name: `${BENCH_ROUTE}.${BENCH_NODE}` },
    spec: {
      nodeName: BENCH_NODE, route: BENCH_ROUTE, source: { topics: [APP_TELEMETRY_FILTER] },
      // Plain MQTT on 127.0.0.1 (allowPlaintext, warned by the engine): TLS would add the same cost to every route and say nothing about the edge.
      destination: { type: 'mqtt', url, allowPlaintext: true, topicPrefix: ROUTE_TOPIC_PREFIX },
      limits: { maxMessagesPerSecond: limits.maxMessagesPerSecond, maxMessageBytes: 64 * 1024, maxQueuedMessages: limits.maxQueuedMessages, maxQueuedBytes: 64 * 1024 * 1024 },
      resolved: { missing: [] },
    },
  });
}

/** The route's counters as flat numbers for the report (absent route: none). */
export function routeFigures(counters: z.infer<typeof RouteCountersSchema> | undefined): Record<string, number> {
  if (counters === undefined) return {};
  return {
    routeMatched: counters.matched, routeQueued: counters.queued, routeForwarded: counters.forwarded,
    routeQueueDepth: counters.queueDepth, routeDroppedQueueFull: counters.dropped.queueFull, routeDroppedOversized: counters.dropped.oversized,
    routeConnected: counters.connected ? 1 : 0,
  };
}

const HubExtrasStatsSchema = z.object({ appDelivered: z.number(), appRefused: z.number(), routes: z.array(RouteCountersSchema) });

/** A consumer over several subscriber-group children: their raw records merged, so the percentiles are over all of them. */
export function mergedGroups(rpcs: ChildRpc[]): PhaseConsumer {
  const Records = z.object({ sentUs: z.array(z.number()), receivedUs: z.array(z.number()) });
  return {
    total: async () => (await Promise.all(rpcs.map((rpc) => rpc.call({ cmd: 'total' }, z.number(), 30_000)))).reduce((a, b) => a + b, 0),
    window: async (fromUs, toUs) => {
      const merged = new LatencyRecorder();
      for (const rpc of rpcs) merged.addAll(await rpc.call({ cmd: 'records', fromUs, toUs }, Records, 120_000));
      return merged.window(fromUs, toUs);
    },
  };
}

export interface ClientSpec { clientId: string; username?: string; passwordFile?: string }

export async function startGroups(label: string, port: number, clients: ClientSpec[], topics: string[], processes: number, s: RunSettings, qos: 0 | 1, res: Resources): Promise<ChildRpc[]> {
  const rpcs: ChildRpc[] = [];
  for (const [i, slice] of splitEvenly(clients, processes).entries()) {
    const rpc = ChildRpc.start(`${label}-${i + 1}`, GROUP_MODULE);
    res.children.push(rpc);
    rpcs.push(rpc);
    await rpc.call({ cmd: 'start', port, clients: slice, topics, qos, t0Ms: s.t0Ms }, z.null(), 60_000);
  }
  return rpcs;
}

const GroupStatsSchema = z.object({ received: z.number(), unreadable: z.number(), disconnects: z.number() });

export async function groupCounters(rpcs: ChildRpc[]): Promise<{ received: number; unreadable: number; disconnects: number }> {
  const all = await Promise.all(rpcs.map((rpc) => rpc.call({ cmd: 'stats' }, GroupStatsSchema, 30_000)));
  return all.reduce((a, b) => ({ received: a.received + b.received, unreadable: a.unreadable + b.unreadable, disconnects: a.disconnects + b.disconnects }),
    { received: 0, unreadable: 0, disconnects: 0 });
}

export interface RouteDestination {
  url: string;
  pid: number;
  reader: ChildRpc;
}

/** The route's destination broker and its reader, up before the hub (the route names its URL). */
export async function startRouteDestination(s: RunSettings, res: Resources): Promise<RouteDestination> {
  const dir = join(s.dir, 'route-destination');
  mkdirSync(dir, { recursive: true });
  const broker = await startMosquitto(dir);
  res.otherMosquittos.push(broker);
  const [reader] = await startGroups('route-reader', broker.port, [{ clientId: 'bench-route-reader' }], [`${ROUTE_TOPIC_PREFIX}#`], 1, s, 1, res);
  s.log(`route destination: mosquitto pid ${broker.pid}, port ${broker.port}`);
  return { url: `mqtt://127.0.0.1:${broker.port}`, pid: broker.pid, reader: reader! };
}

/** What the hub child sets up at start for these options. */
export function hubExtras(opts: LocalAppsOptions, destinationUrl: string | null): NonNullable<RunSettings['hubExtras']> {
  return {
    ...(opts.appSubscribers > 0 ? { apps: { workloads: appWorkloadNames(opts.appSubscribers), grant: BENCH_APP_GRANT } } : {}),
    ...(destinationUrl !== null ? { route: benchNodeRoute(destinationUrl, { maxMessagesPerSecond: opts.routeMaxMessagesPerSecond, maxQueuedMessages: opts.routeMaxQueuedMessages }) } : {}),
  };
}

/** Adds counters to a target's result and stops the extra processes before the target's own finish. */
export function wrapFinish(t: TargetSession, before: () => Promise<{ counters: Record<string, number>; warnings: string[] }>): void {
  const finish = t.finish;
  t.finish = async (phases) => {
    const extra = await before();
    const result: TargetResult = await finish(phases);
    return { ...result, consumerCounters: { ...result.consumerCounters, ...extra.counters }, warnings: [...result.warnings, ...extra.warnings] };
  };
}

/** App subscribers (each with its workload's credential) and the route's reader as consumers of every hub phase. */
export async function attachHubLocalApps(s: RunSettings, hub: TargetSession, res: Resources, opts: LocalAppsOptions, destination: RouteDestination | null): Promise<void> {
  const files = hub.passwordFiles ?? [];
  const apps = opts.appSubscribers > 0
    ? await startGroups('app-subscribers', hub.port, appWorkloadNames(opts.appSubscribers).map((w, i) => ({ clientId: appUsername(w), username: appUsername(w), passwordFile: files[i]! })),
      [APP_TELEMETRY_FILTER], opts.subscriberProcesses, s, opts.qos, res)
    : [];
  if (apps.length > 0) hub.groups.push({ label: 'app subscribers', pids: apps.map((r) => r.pid) });
  if (destination) hub.groups.push({ label: 'route destination (mosquitto + reader)', pids: [destination.pid, destination.reader.pid] });
  const hubRpc = res.children.find((c) => c.name === 'devicehub');
  const counters = async (): Promise<Record<string, number>> => {
    if (!hubRpc?.running) return {};
    const stats = await hubRpc.call({ cmd: 'stats' }, HubExtrasStatsSchema, 30_000);
    return { appDelivered: stats.appDelivered, appRefused: stats.appRefused, ...routeFigures(stats.routes.find((r) => r.route === BENCH_ROUTE)) };
  };
  hub.extras = {
    consumers: {
      ...(apps.length > 0 ? { 'app subscribers': mergedGroups(apps) } : {}),
      ...(destination ? { 'route destination': mergedGroups([destination.reader]) } : {}),
    },
    counters,
  };
  wrapFinish(hub, async () => {
    const final = await counters();
    const warnings: string[] = [];
    const appStats = apps.length > 0 ? await groupCounters(apps) : null;
    if (appStats && appStats.disconnects > 0) warnings.push(`app subscribers were disconnected ${appStats.disconnects} times`);
    const routed = destination ? await groupCounters([destination.reader]) : null;
    await res.releaseChildren([...apps, ...(destination ? [destination.reader] : [])]);
    return {
      counters: { ...final, ...(appStats ? { appSubscribersReceived: appStats.received } : {}), ...(routed ? { routeDestinationReceived: routed.received } : {}) },
      warnings,
    };
  });
}

/** The same number of plain (anonymous) subscribers to the same filter on mosquitto, no route. */
export async function attachMosquittoLocalApps(s: RunSettings, mosquitto: TargetSession, res: Resources, opts: LocalAppsOptions): Promise<void> {
  if (opts.appSubscribers === 0) return;
  const clients = Array.from({ length: opts.appSubscribers }, (_, i) => ({ clientId: `plain-subscriber-${i + 1}` }));
  const plain = await startGroups('plain-subscribers', mosquitto.port, clients, [APP_TELEMETRY_FILTER], opts.subscriberProcesses, s, opts.qos, res);
  mosquitto.groups.push({ label: 'plain subscribers', pids: plain.map((r) => r.pid) });
  mosquitto.extras = { consumers: { 'plain subscribers': mergedGroups(plain) } };
  wrapFinish(mosquitto, async () => {
    const stats = await groupCounters(plain);
    await res.releaseChildren(plain);
    return {
      counters: { plainSubscribersReceived: stats.received },
      warnings: stats.disconnects > 0 ? [`plain subscribers were disconnected ${stats.disconnects} times`] : [],
    };
  });
}
