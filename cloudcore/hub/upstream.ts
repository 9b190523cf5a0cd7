import { workloadName, type UpstreamEntry, type Workload } from '../../protocol/index.js';
import type { TelemetryStore } from '../telemetry/telemetryStore.js';
import { ConflictError, type Store } from '../store/store.js';
import { cappedAtNow, cappedEvent, cappedStatus, cappedTwin } from './edgeClock.js';
import { mergeReported } from './mergeReported.js';
import { readModifyWrite } from '../store/readModifyWrite.js';

/**
 * Applies what an edge reports (its outbox) to the store. Each entry is idempotent so a
 * resend after a lost ack changes nothing: statuses are keyed by object and ordered by the
 * edge's own clock or version; events are named by (node, epoch, seq) and a duplicate create
 * is ignored; telemetry samples are appended (a resent batch may repeat samples: telemetry is
 * at-least-once, like MQTT QoS 1).
 */
export interface UpstreamSinks {
  store: Store;
  telemetry?: TelemetryStore;
}

/** Writes of edge reports give up sooner than operator writes: the edge resends anyway. */
const UPSTREAM_WRITE_ATTEMPTS = 5;

/**
 * Why an entry was not applied because it speaks for a device bound to another node: the
 * session refuses it visibly (error frame + warning) like any other frame about a foreign node,
 * yet still acks it, so an edge whose device was moved away is not wedged on its outbox.
 */
export interface ForeignDevice { device: string; owner: string | undefined }

export async function applyUpstreamEntry(sinks: UpstreamSinks, node: string, epoch: string, entry: UpstreamEntry, nowMs = Date.now()): Promise<ForeignDevice | undefined> {
  switch (entry.kind) {
    case 'workloadStatus':
      await applyWorkloadStatus(sinks.store, node, entry.body.app, cappedStatus(entry.body.status, nowMs), nowMs);
      return undefined;
    case 'twinReported':
      return applyReportedTwin(sinks.store, node, entry.body, nowMs);
    case 'telemetry': {
      const device = await sinks.store.get('Device', entry.body.device);
      if (!device) return undefined; // deleted meanwhile: the samples are moot
      if (device.spec.nodeName !== node) return { device: entry.body.device, owner: device.spec.nodeName };
      await sinks.telemetry?.append(entry.body.device, entry.body.samples);
      return undefined;
    }
    case 'event':
      try {
        await sinks.store.create({
          kind: 'Event',
          metadata: { name: `${node}.${epoch.slice(0, 8).toLowerCase()}.${entry.seq}` },
          spec: { ...cappedEvent(entry.body, nowMs), node },
        });
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err; // already recorded: a resend
      }
      return undefined;
  }
}

async function applyWorkloadStatus(store: Store, node: string, app: string, status: NonNullable<Workload['status']>, nowMs: number): Promise<void> {
  await readModifyWrite(store, 'Workload', workloadName(app, node), (current) => {
    // The app may have been deleted or moved away meanwhile: the report is moot.
    if (current.spec.nodeName !== node) return undefined;
    // Older than what we hold (whose time is capped too: one stored from the future before the cap would block every report).
    if (current.status && Date.parse(cappedAtNow(current.status.observedAt, nowMs)) > Date.parse(status.observedAt)) return undefined;
    if (current.status && JSON.stringify(current.status) === JSON.stringify(status)) return undefined;
    return { ...current, status };
  }, { attempts: UPSTREAM_WRITE_ATTEMPTS });
}

type TwinReport = Extract<UpstreamEntry, { kind: 'twinReported' }>['body'];

async function applyReportedTwin(store: Store, node: string, body: TwinReport, nowMs: number): Promise<ForeignDevice | undefined> {
  let foreign: ForeignDevice | undefined;
  await readModifyWrite(store, 'Device', body.device, (current) => {
    foreign = undefined; // a retry reads afresh
    if (current.spec.nodeName !== node) { // another node's device: never theirs to write
      foreign = { device: body.device, owner: current.spec.nodeName };
      return undefined;
    }
    const held = current.status?.twin;
    const twin = mergeReported(held && cappedTwin(held, nowMs), cappedTwin(body.twin, nowMs));
    const status = {
      twin, online: body.online, lastSeen: body.lastSeen === null ? null : cappedAtNow(body.lastSeen, nowMs), observedGeneration: body.observedGeneration,
      ...(body.offlineReason !== undefined ? { offlineReason: body.offlineReason } : {}),
    };
    if (current.status && JSON.stringify(current.status) === JSON.stringify(status)) return undefined;
    return { ...current, status };
  }, { attempts: UPSTREAM_WRITE_ATTEMPTS });
  return foreign;
}
