/**
 * The DeviceHub under test, alone in its own process so its RSS and CPU are its own. Its
 * upstream callback writes into a real edge MetaStore outbox, as edgecore does; a reported
 * update counts as persisted once it is in the twin DB (the hub saves it before calling
 * upstream) and in the outbox, and its latency is taken at that moment.
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
  z.object({ cmd: z.literal('start'), dbPath: z.string(), outboxPath: z.string(), devicesFile: z.string(), t0Ms: z.number() }),
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
let upstreamEntries = 0;
let upstreamFailures = 0;
const warnings: string[] = [];

function onUpstream(entry: DeviceUpstreamEntry): void {
  upstreamEntries++;
  try {
    meta!.enqueue(entry.kind, entry.key, entry.body);
  } catch (err) {
    upstreamFailures++;
    if (warnings.length < 20) warnings.push(`outbox enqueue failed: ${String(err)}`);
    return;
  }
  if (entry.kind !== 'twinReported') return;
  // Online/offline changes also go upstream; only a new counter is a new reported update.
  const counter = entry.body.twin.reported.counter;
  if (typeof counter !== 'number' || lastCounter.get(entry.key) === counter) return;
  lastCounter.set(entry.key, counter);
  recorder.add(counter, microsSince(t0Ms));
}

serveRpc(async (raw) => {
  const request = RequestSchema.parse(raw);
  switch (request.cmd) {
    case 'start': {
      t0Ms = request.t0Ms;
      meta = MetaStore.open(request.outboxPath);
      const devices = z.array(DeviceSchema).parse(JSON.parse(readFileSync(request.devicesFile, 'utf8')));
      hub = new DeviceHub({
        dbPath: request.dbPath, host: '127.0.0.1', port: 0, allowAnonymous: false, upstream: onUpstream,
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
