import type { PublishPacket } from 'aedes';
import { deviceTopics, twinView, type Device, type MapperDeviceState, type TelemetrySample } from '../../protocol/index.js';
import type { TelemetryBatcher } from './telemetry/telemetryBatcher.js';
import {
  applyReported, deltaMessage, errorMessage, parseMapperStatePayload, parseReportedPayload, parseTelemetryPayload, type Refusal,
} from './twin/twinEngine.js';
import type { TwinLedger } from './twin/twinLedger.js';

/** What applying a device message needs from the hub. */
export interface MessageTargets {
  twins: TwinLedger;
  batcher: TelemetryBatcher;
  /** Puts samples in the running transaction's journal row (DeviceStorage.journalTelemetry); returns its seq. */
  journalTelemetry: (device: string, samples: TelemetrySample[]) => number;
  publish: (topic: string, message: object, qos: 0 | 1) => void;
  /**
   * Counts and logs a refused message (its answer on `errors` is part of the returned
   * publishes); `payload` is the message's own buffer, so the hub can keep it from subscribers.
   */
  refused: (device: string, topic: string, refusal: Refusal, payload: Buffer) => void;
}

/**
 * Applies one message a device (or its mapper) sent on `ef/devices/<id>/<rest>`, inside the
 * batch's transaction: a report to the twin, telemetry to the batcher. Returns what to do once
 * the batch is committed (publish the new delta, the twin/get answer or a refusal on `errors`;
 * batch the telemetry), so nothing is announced or kept that a failed commit would take back.
 */
export function applyDeviceMessage(
  t: MessageTargets, device: Device, rest: string, topic: string, payload: Buffer, now: string,
): (() => void) | undefined {
  const name = device.metadata.name;
  const twin = t.twins.get(name);
  if (twin === undefined) return undefined;
  // The answer topics are built only for a message that gets one: most reports get none.
  const refuse = (refusal: Refusal) => {
    t.refused(name, topic, refusal, payload);
    const message = errorMessage(refusal, topic, payload);
    return () => t.publish(deviceTopics(name).errors, message, 0);
  };
  switch (rest) {
    case 'twin/reported': {
      const patch = parseReportedPayload(payload, device.spec.modelSpec);
      if (!patch.ok) return refuse(patch.refusal);
      const result = applyReported(twin, patch.value, now);
      if (!result.changed) {
        t.twins.touch(device, now);
        return undefined;
      }
      t.twins.put(name, result.twin);
      t.twins.reportChange(device);
      const before = deltaMessage(device.spec, twin.reported);
      const after = deltaMessage(device.spec, result.twin.reported);
      if (after === null || JSON.stringify(after) === JSON.stringify(before)) return undefined;
      return () => t.publish(deviceTopics(name).delta, after, 1);
    }
    case 'twin/get': {
      const view = twinView(device.spec, twin);
      t.twins.touch(device, now);
      return () => t.publish(deviceTopics(name).getResult, view, 1);
    }
    case 'telemetry': {
      const samples = parseTelemetryPayload(payload, device.spec.modelSpec, now);
      if (!samples.ok) return refuse(samples.refusal);
      t.twins.touch(device, now);
      // Journaled in this transaction, so they are on disk at the PUBACK; batched only once it
      // commits: if it is rolled back, the device sends the message again, and its samples
      // must not be there twice.
      const journalSeq = t.journalTelemetry(name, samples.value);
      return () => t.batcher.add(name, samples.value, journalSeq);
    }
    default:
      return undefined;
  }
}

/** A mapper's `mapper/state` message: the state, or null once refused (counted, answered on `errors`). */
export function parseMapperState(t: MessageTargets, device: string, topic: string, payload: Buffer): MapperDeviceState | null {
  const state = parseMapperStatePayload(payload);
  if (state.ok) return state.value;
  t.refused(device, topic, state.refusal, payload);
  t.publish(deviceTopics(device).errors, errorMessage(state.refusal, topic, payload), 0);
  return null;
}

export function payloadOf(packet: PublishPacket): Buffer {
  return Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
}

/** Now as ISO-8601, formatted once per millisecond: a batch holds hundreds of messages of the same one. */
export class ReceiveClock {
  private ms = 0;
  private iso = '';

  now(): string {
    const ms = Date.now();
    if (ms !== this.ms) {
      this.ms = ms;
      this.iso = new Date(ms).toISOString();
    }
    return this.iso;
  }
}
