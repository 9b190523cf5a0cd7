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
import { z } from 'zod';
import { DeviceSchema } from '../../../protocol/index.js';
import { DeviceHub } from '../../../edgecore/devices/deviceHub.js';
import { MetaStore } from '../../../edgecore/meta/metaStore.js';
import type { DeviceUpstreamEntry } from '../../../edgecore/devices/twin/twinEngine.js';
import { serveRpc } from './childRpc.js';

const RequestSchema = z.discriminatedUnion('cmd', [
  z.object({
    cmd: z.literal('start'), dbPath: z.string(), devicesFile: z.string(), maxBatch: z.number().int().min(1).optional(),
    twinUpstreamIntervalMs: z.number().int().min(0).optional(),
  }),
  z.object({ cmd: z.literal('stats') }),
  z.object({ cmd: z.literal('close') }),
]);

let hub: DeviceHub | null = null;
let meta: MetaStore | null = null;
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
      return { port };
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
        warnings,
      };
    }
    case 'close':
      await hub?.close();
      meta?.close();
      hub = null;
      meta = null;
      return null;
  }
});
