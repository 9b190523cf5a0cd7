/**
 * The DeviceHub under test, alone in its own process so its RSS and CPU are its own. Wired as
 * edgecore wires it: the hub keeps its tables in a real edge MetaStore database and its upstream
 * callback writes that store's outbox, inside the hub's transaction. A reported update counts as
 * persisted once that transaction is committed (twin and outbox entry on disk; its publisher's
 * PUBACK goes out right after), and its latency is taken at that moment.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DeviceSchema } from '../../../protocol/index.js';
import { DeviceHub } from '../../../edgecore/devices/deviceHub.js';
import { MetaStore } from '../../../edgecore/meta/metaStore.js';
import type { DeviceUpstreamEntry } from '../../../edgecore/devices/twinEngine.js';
import { serveRpc } from './childRpc.js';
import { LatencyRecorder, microsSince } from './latencyRecorder.js';

const RequestSchema = z.discriminatedUnion('cmd', [
  z.object({ cmd: z.literal('start'), dbPath: z.string(), devicesFile: z.string(), t0Ms: z.number(), maxBatch: z.number().int().min(1).optional() }),
  z.object({ cmd: z.literal('window'), fromUs: z.number(), toUs: z.number() }),
  z.object({ cmd: z.literal('stats') }),
  z.object({ cmd: z.literal('total') }),
  z.object({ cmd: z.literal('close') }),
]);

let hub: DeviceHub | null = null;
let meta: MetaStore | null = null;
let t0Ms = 0;
const recorder = new LatencyRecorder();
const lastCounter = new Map<string, number>();
const lastVersion = new Map<string, number>();
/**
 * Reports of one device that one transaction merged into a single outbox entry (possible with
 * more than one unacked publish per device): persisted, but their send times are not in the
 * entry, so they are counted here and not in the latency figures.
 */
let coalesced = 0;
let upstreamEntries = 0;
let upstreamFailures = 0;
let commits = 0;
let rollbacks = 0;
const warnings: string[] = [];
/** Send times of the reported updates in the running transaction, recorded once it commits. */
let uncommitted: number[] = [];

function onUpstreamCommit(committed: boolean): void {
  if (committed) {
    commits++;
    const at = microsSince(t0Ms);
    for (const sentUs of uncommitted) recorder.add(sentUs, at);
  } else {
    rollbacks++;
  }
  uncommitted = [];
}

function onUpstream(entries: DeviceUpstreamEntry[]): void {
  try {
    meta!.enqueueMany(entries);
  } catch (err) {
    upstreamFailures += entries.length;
    if (warnings.length < 20) warnings.push(`outbox enqueue failed: ${String(err)}`);
    return;
  }
  upstreamEntries += entries.length;
  for (const entry of entries) noteReported(entry);
}

function noteReported(entry: DeviceUpstreamEntry): void {
  if (entry.kind !== 'twinReported') return;
  const version = entry.body.twin.version;
  const previousVersion = lastVersion.get(entry.key);
  lastVersion.set(entry.key, version);
  if (previousVersion !== undefined && version - previousVersion > 1) coalesced += version - previousVersion - 1;
  // Online/offline changes also go upstream; only a new counter is a new reported update.
  const counter = entry.body.twin.reported.counter;
  if (typeof counter !== 'number' || lastCounter.get(entry.key) === counter) return;
  lastCounter.set(entry.key, counter);
  uncommitted.push(counter);
}

serveRpc(async (raw) => {
  const request = RequestSchema.parse(raw);
  switch (request.cmd) {
    case 'start': {
      t0Ms = request.t0Ms;
      meta = MetaStore.open(request.dbPath);
      const devices = z.array(DeviceSchema).parse(JSON.parse(readFileSync(request.devicesFile, 'utf8')));
      hub = new DeviceHub({
        db: meta.database, host: '127.0.0.1', port: 0, allowAnonymous: false, upstream: onUpstream, onUpstreamCommit,
        ...(request.maxBatch !== undefined ? { maxBatch: request.maxBatch } : {}),
        logger: {
          info: () => {},
          warn: (obj, msg) => { if (warnings.length < 20) warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`); },
        },
      });
      const { port } = await hub.start();
      hub.setDevices(devices);
      return { port };
    }
    case 'total':
      return recorder.total;
    case 'window':
      return recorder.window(request.fromUs, request.toUs);
    case 'stats': {
      const status = hub!.statusSnapshot();
      return {
        clients: status.clients,
        online: status.devices.filter((d) => d.online).length,
        received: status.messages.received,
        refused: status.messages.refused,
        reportedVersionSum: status.devices.reduce((sum, d) => sum + d.reportedVersion, 0),
        persisted: recorder.total,
        upstreamEntries,
        upstreamFailures,
        outboxDepth: meta!.outboxStats().depth,
        commits,
        rollbacks,
        coalesced,
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
