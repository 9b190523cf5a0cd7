import { z } from 'zod';
import {
  AppInputSchema, AppSchema, CreatedDeviceSchema, DeviceModelSchema, NodeSchema, RouteInputSchema, RouteSchema, RoutedMessageListSchema,
} from '../../../protocol/index.js';
import { mapLimit, type ApiClient } from '../fleet.js';
import { BENCH_MODEL } from './benchDevices.js';
import type { PhaseConsumer } from './benchPhases.js';
import { routedRecords } from './cloudRoute.js';
import { APP_TELEMETRY_FILTER, BENCH_APP_GRANT, BENCH_ROUTE } from './localApps.js';
import { LatencyRecorder } from './latencyRecorder.js';

/**
 * What the edgecore target asks of the cloud's REST API (every answer parsed with the
 * protocol's schemas): the bench's devices, app workloads and route, declared as an operator
 * would, and the route's messages read back from the cloud's store.
 */

/** The label the bench puts on its node; the apps and the route select it. */
export const BENCH_LABEL = { 'bench.edgefleet.io/role': 'devices' } as const;
const MODEL = 'bench-thermometer';

/** Labels the node, so the apps and the route select it as they would select a real one. */
export async function labelNode(api: ApiClient, node: string): Promise<void> {
  NodeSchema.parse(await api.request('PATCH', `/nodes/${node}`, { metadata: { labels: BENCH_LABEL } }));
}

/**
 * The bench model and one device per name on `node`, with bounded concurrency. The REST API
 * issues each device its own password (shown once, in the answer) and stores only its scrypt
 * hash: it takes no hash from the operator, so the bench's shared credential hash cannot be
 * used here, and each device logs in with its own password (one scrypt per device at the edge
 * on first login, as in a real fleet).
 */
export async function registerDevices(api: ApiClient, node: string, names: readonly string[], concurrency: number, progress: (line: string) => void): Promise<Record<string, string>> {
  // mqtt: the loaders are the devices themselves (no mapper), as in docs/examples/edge-alerts.yaml.
  DeviceModelSchema.parse(await api.request('POST', '/devicemodels', { kind: 'DeviceModel', metadata: { name: MODEL }, spec: { ...BENCH_MODEL, protocol: 'mqtt' } }));
  const passwords: Record<string, string> = {};
  const every = Math.max(1, Math.floor(names.length / 5));
  let done = 0;
  await mapLimit(names, concurrency, async (name) => {
    const created = CreatedDeviceSchema.parse(await api.request('POST', '/devices', {
      kind: 'Device', metadata: { name }, spec: { model: MODEL, nodeName: node, protocol: { name: 'mqtt' } },
    }));
    passwords[name] = created.credentials.password;
    if (++done % every === 0) progress(`devices registered: ${done}/${names.length}`);
  });
  return passwords;
}

/**
 * One app per workload name: a process that only sleeps, with the grant a telemetry reader
 * asks for. edgecore makes its broker credential and hands it to the process (EF_MQTT_*);
 * the bench's subscribers then log in with what the process was given.
 */
export async function createApps(api: ApiClient, workloads: readonly string[]): Promise<void> {
  for (const name of workloads) {
    const app: z.input<typeof AppInputSchema> = {
      kind: 'App', metadata: { name },
      spec: { selector: { matchLabels: { ...BENCH_LABEL } }, template: { runtime: 'process', command: '/bin/sleep', args: ['86400'], mqtt: BENCH_APP_GRANT, restartPolicy: 'Always' } },
    };
    AppSchema.parse(await api.request('POST', '/apps', app));
  }
}

/** The route of every device's telemetry to EdgeFleet's own telemetry store, on the bench's node. */
export async function createCloudRoute(api: ApiClient, limits: { maxMessagesPerSecond: number; maxQueuedMessages: number }): Promise<void> {
  const route: z.input<typeof RouteInputSchema> = {
    kind: 'Route', metadata: { name: BENCH_ROUTE },
    spec: {
      selector: { matchLabels: { ...BENCH_LABEL } }, source: { topics: [APP_TELEMETRY_FILTER] }, destination: { type: 'cloud' },
      limits: { maxMessagesPerSecond: limits.maxMessagesPerSecond, maxMessageBytes: 64 * 1024, maxQueuedMessages: limits.maxQueuedMessages, maxQueuedBytes: 64 * 1024 * 1024 },
    },
  };
  RouteSchema.parse(await api.request('POST', '/routes', route));
}

/** The counters the node last reported to the cloud for the bench route (empty before its first report). */
export async function cloudRouteCounters(api: ApiClient, node: string): Promise<Record<string, number>> {
  const route = RouteSchema.parse(await api.request('GET', `/routes/${BENCH_ROUTE}`));
  const seen = route.status?.nodes.find((n) => n.node === node);
  if (seen?.forwarded === undefined) return {};
  return { cloudSeenForwarded: seen.forwarded, cloudSeenQueueDepth: seen.queueDepth ?? 0 };
}

const PAGE = 1000;
/** Pages read per call: a bound on one poll (1,000,000 messages), never reached by a phase. */
const MAX_PAGES = 1000;

/**
 * The cloud's store of the bench route, read from `GET /routes/{r}/messages` as a consumer of
 * each phase: every poll reads the pages after its cursor and times each new message from its
 * send time (in the payload) to the cloud's `receivedAt`. Polled only after sending stopped
 * (settle, window), so the reading never competes with the load it measures.
 */
export class CloudRouteReader implements PhaseConsumer {
  private readonly recorder = new LatencyRecorder();
  private cursor = 0;
  stored = 0;
  unreadable = 0;
  /** Ids that were trimmed from the cloud's store before the bench read them. */
  missing = 0;

  constructor(private readonly api: ApiClient, private readonly t0Ms: number) {}

  async poll(): Promise<number> {
    for (let page = 0; page < MAX_PAGES; page++) {
      const list = RoutedMessageListSchema.parse(await this.api.request('GET', `/routes/${BENCH_ROUTE}/messages?after=${this.cursor}&limit=${PAGE}`));
      const records = routedRecords(list.items, this.cursor, this.t0Ms);
      this.recorder.addAll(records);
      this.stored += list.items.length;
      this.unreadable += records.unreadable;
      this.missing += records.missing;
      this.cursor = records.lastId;
      if (list.items.length < PAGE) break;
    }
    return this.stored;
  }

  total(): Promise<number> {
    return this.poll();
  }

  async window(fromUs: number, toUs: number) {
    await this.poll();
    return this.recorder.window(fromUs, toUs);
  }
}

export const EdgeReadySchema = z.object({ mqttUrl: z.string().url() });
