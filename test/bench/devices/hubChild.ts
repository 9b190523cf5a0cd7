/**
 * The DeviceHub under test, alone in its own process so its RSS and CPU are its own. Wired as
 * edgecore wires it: the hub keeps its tables in a real edge MetaStore database and its upstream
 * callback writes that store's outbox, inside the hub's transaction. A reported update is
 * persisted once its twin row is committed; the hub sends its PUBACK only then, so the loaders
 * time each update from send to PUBACK (benchPhases.ts). This process counts what reached the
 * twins (the sum of twin versions) and the outbox (which gets a device's newest state at most
 * once per twin upstream interval).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { DeviceSchema, NodeRouteSchema, WorkloadMqttGrantSchema } from '../../../protocol/index.js';
import { AppAccess } from '../../../edgecore/devices/apps/appAccess.js';
import { DeviceHub } from '../../../edgecore/devices/deviceHub.js';
import { RouteEngine } from '../../../edgecore/devices/routes/routeEngine.js';
import { RouteQueue } from '../../../edgecore/devices/routes/routeQueue.js';
import { MetaStore } from '../../../edgecore/meta/metaStore.js';
import type { DeviceUpstreamEntry } from '../../../edgecore/devices/twin/twinEngine.js';
import { serveRpc } from './childRpc.js';

const RequestSchema = z.discriminatedUnion('cmd', [
  z.object({
    cmd: z.literal('start'), dbPath: z.string(), devicesFile: z.string(), maxBatch: z.number().int().min(1).optional(),
    twinUpstreamIntervalMs: z.number().int().min(0).optional(),
    /** Issue 24: app credentials made as edgecore's AppAccess makes them (one per workload name, this grant). */
    apps: z.object({ workloads: z.array(z.string()).min(1), grant: WorkloadMqttGrantSchema }).optional(),
    /** Issue 24: one route, run by edgecore's RouteEngine and queue (routes.db beside the hub's database). */
    route: NodeRouteSchema.optional(),
  }),
  z.object({ cmd: z.literal('stats') }),
  z.object({ cmd: z.literal('close') }),
]);

let hub: DeviceHub | null = null;
let meta: MetaStore | null = null;
let routeQueue: RouteQueue | null = null;
let routes: RouteEngine | null = null;
let upstreamEntries = 0;
/** Telemetry samples handed to the outbox (batched by the hub, ≤ 1 s). */
let telemetrySamples = 0;
let upstreamFailures = 0;
let commits = 0;
let rollbacks = 0;
const warnings: string[] = [];

function onUpstreamCommit(committed: boolean): void {
  if (committed) commits++;
  else rollbacks++;
}

function onUpstream(entries: DeviceUpstreamEntry[]): void {
  try {
    meta!.enqueueMany(entries, { bodiesParsed: true }); // as edgecore.ts wires it
  } catch (err) {
    upstreamFailures += entries.length;
    if (warnings.length < 20) warnings.push(`outbox enqueue failed: ${String(err)}`);
    return;
  }
  upstreamEntries += entries.length;
  for (const entry of entries) if (entry.kind === 'telemetry') telemetrySamples += entry.body.samples.length;
}

serveRpc(async (raw) => {
  const request = RequestSchema.parse(raw);
  switch (request.cmd) {
    case 'start': {
      meta = MetaStore.open(request.dbPath);
      const devices = z.array(DeviceSchema).parse(JSON.parse(readFileSync(request.devicesFile, 'utf8')));
      hub = new DeviceHub({
        db: meta.database, host: '127.0.0.1', port: 0, allowAnonymous: false, upstream: onUpstream, onUpstreamCommit,
        ...(request.maxBatch !== undefined ? { maxBatch: request.maxBatch } : {}),
        ...(request.twinUpstreamIntervalMs !== undefined ? { twinUpstreamIntervalMs: request.twinUpstreamIntervalMs } : {}),
        logger: {
          info: () => {},
          warn: (obj, msg) => { if (warnings.length < 20) warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`); },
        },
      });
      const { port } = await hub.start();
      hub.setDevices(devices);
      const passwordFiles: string[] = [];
      if (request.apps) {
        const access = new AppAccess(join(request.dbPath, '..', 'apps'), hub);
        for (const workload of request.apps.workloads) passwordFiles.push(await access.ensure(workload, request.apps.grant));
      }
      if (request.route) {
        const warn = (obj: object, msg: string) => { if (warnings.length < 20) warnings.push(`route: ${msg} ${JSON.stringify(obj)}`); };
        routeQueue = new RouteQueue(join(request.dbPath, '..', 'routes.db'));
        // No cloud link in this process: the uplink only serves cloud destinations, which only the edgecore target runs (edgecoreTarget.ts).
        routes = new RouteEngine({
          node: request.route.spec.nodeName, queue: routeQueue, bus: hub.routeBus()!, uplink: { send: () => false, up: () => false },
          log: { info: () => {}, warn },
        });
        await routes.setRoutes([request.route]);
      }
      return { port, passwordFiles };
    }
    case 'stats': {
      const status = hub!.statusSnapshot();
      return {
        clients: status.clients,
        online: status.devices.filter((d) => d.online).length,
        received: status.messages.received,
        refused: status.messages.refused,
        reportedVersionSum: status.devices.reduce((sum, d) => sum + d.reportedVersion, 0),
        upstreamEntries,
        telemetrySamples,
        upstreamFailures,
        outboxDepth: meta!.outboxStats().depth,
        commits,
        rollbacks,
        // Every transaction of the hub (not only those with upstream entries) and the work they carried.
        hubTransactions: status.commits.transactions,
        hubCommittedItems: status.commits.items,
        appDelivered: status.appGrants.reduce((sum, a) => sum + a.delivered, 0),
        appRefused: status.appGrants.reduce((sum, a) => sum + a.refused, 0),
        routes: routes?.counters() ?? [],
        warnings,
      };
    }
    case 'close':
      await routes?.close();
      routeQueue?.close();
      routes = null;
      routeQueue = null;
      await hub?.close();
      meta?.close();
      hub = null;
      meta = null;
      return null;
  }
});
