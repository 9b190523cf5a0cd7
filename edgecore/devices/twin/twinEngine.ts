import { z } from 'zod';
import {
  MapperDeviceStateSchema, PropertyNameSchema, PropertyValueSchema, checkProperties, deviceTopics, twinDelta,
  type Device, type DeviceModelSpec, type MapperDeviceState, type DeviceSpec, type PropertyValue, type ReportedTwin,
  type TelemetrySample, type UpstreamEntry,
} from '../../../protocol/index.js';
import { topicMatchesFilter } from '../persistence/topicMatcher.js';

/**
 * The twin engine's pure core: parsing and checking what devices publish, merging reported
 * values, and building what the edge publishes back. No I/O; deviceHub.ts wires it to MQTT
 * and twinStore.ts to SQLite.
 */

/** Payloads above this are refused unparsed: a twin message is a few hundred bytes. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** Most samples one telemetry message may carry (also the most one upstream entry may carry). */
export const MAX_SAMPLES_PER_MESSAGE = 1000;
/** How much of a refused payload the error message quotes back. */
export const QUOTED_PAYLOAD_CHARS = 200;

/** The edge's state of one device twin: the reported section plus connectivity. */
export interface DeviceTwinState {
  reported: Record<string, PropertyValue>;
  /** Counts accepted reports that changed a value. */
  version: number;
  metadata: Record<string, { updatedAt: string }>;
  lastSeen: string | null;
  online: boolean;
}

export const emptyTwin = (): DeviceTwinState => ({ reported: {}, version: 0, metadata: {}, lastSeen: null, online: false });

/** Why a device message was refused. */
export interface Refusal {
  error: string;
  property?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; refusal: Refusal };

/** What the edge publishes on `ef/devices/<id>/errors`. */
export interface ErrorMessage {
  error: string;
  property?: string;
  topic: string;
  payload?: string;
}

export type TwinReportedEntry = Omit<Extract<UpstreamEntry, { kind: 'twinReported' }>, 'seq'>;
export type TelemetryEntry = Omit<Extract<UpstreamEntry, { kind: 'telemetry' }>, 'seq'>;
/** What the hub hands to the edge's outbox. */
export type DeviceUpstreamEntry = TwinReportedEntry | TelemetryEntry;

const ReportedPayloadSchema = z.strictObject({
  properties: z.record(PropertyNameSchema, PropertyValueSchema.nullable()),
});

/** The shape alone, for reports of devices with a model (see parseReportedPayload). */
const ReportedShapeSchema = z.strictObject({ properties: z.record(z.string(), z.unknown()) });

/** `{"samples": [sample, …]}`, 1 to MAX_SAMPLES_PER_MESSAGE of them. */
const batchOf = <S extends z.ZodType>(sample: S) => z.strictObject({ samples: z.array(sample).min(1).max(MAX_SAMPLES_PER_MESSAGE) });

const TelemetrySampleInputSchema = z.strictObject({
  t: z.iso.datetime({ offset: true }).optional(),
  values: z.record(PropertyNameSchema, PropertyValueSchema),
});
const TelemetryBatchInputSchema = batchOf(TelemetrySampleInputSchema);

/** The same with values unchecked, for devices with a model (see parseTelemetryPayload). */
const TelemetrySampleShapeSchema = TelemetrySampleInputSchema.extend({ values: z.record(z.string(), z.unknown()) });
const TelemetryBatchShapeSchema = batchOf(TelemetrySampleShapeSchema);

/**
 * Parses a batch, or one sample as a batch of one. No `.transform()`: building one per message
 * cost ~2.5 % of the hub's CPU at saturation (every fifth publish a sample), and even a shared
 * one adds a pipe stage to every parse.
 */
function parseSamples<T>(
  value: unknown, isBatch: boolean, batch: z.ZodType<{ samples: T[] }>, single: z.ZodType<T>,
): { samples: T[] } | { issue: z.core.$ZodIssue } {
  const parsed = isBatch ? batch.safeParse(value) : single.safeParse(value);
  if (!parsed.success) return { issue: parsed.error.issues[0]! };
  return isBatch ? parsed.data as { samples: T[] } : { samples: [parsed.data as T] };
}

function decodeJson(payload: Buffer): Parsed<unknown> {
  if (payload.length > MAX_PAYLOAD_BYTES) {
    return { ok: false, refusal: { error: `payload is ${payload.length} bytes; at most ${MAX_PAYLOAD_BYTES} are accepted` } };
  }
  let protoKey = false;
  let value: unknown;
  // A "__proto__" key is spelled out in the text or hidden behind \u escapes; only then is the
  // (several times slower) reviver needed to find it.
  const text = payload.toString('utf8');
  const mayHideProto = text.includes('__proto__') || text.includes('\\u');
  try {
    value = mayHideProto
      ? JSON.parse(text, (key, v: unknown) => {
        if (key === '__proto__') protoKey = true;
        return v;
      })
      : JSON.parse(text);
  } catch (err) {
    return { ok: false, refusal: { error: `payload is not valid JSON: ${(err as Error).message}` } };
  }
  // JSON.parse keeps "__proto__" as an own key, but copying it into another object (zod, merges)
  // would set a prototype instead: refuse it rather than drop it silently.
  if (protoKey) return { ok: false, refusal: { property: '__proto__', error: 'property name "__proto__" is not allowed' } };
  return { ok: true, value };
}

/** Turns the first zod issue into a refusal that names the property when there is one. */
function refusalFromIssue(issue: z.core.$ZodIssue, nullable: boolean): Refusal {
  const path = issue.path;
  const valuesAt = path.findIndex((p) => p === 'properties' || p === 'values');
  const property = valuesAt >= 0 && typeof path[valuesAt + 1] === 'string' ? path[valuesAt + 1] as string : undefined;
  if (property !== undefined && path.length === valuesAt + 2) {
    // In a batch of samples, which one: `samples.3: property "x" must be …`.
    const where = valuesAt > 0 ? `${path.slice(0, valuesAt).join('.')}: ` : '';
    if (issue.code === 'invalid_key') {
      return { property, error: `${where}property name "${property}" is invalid: must start with a letter or "_" and hold letters, digits, "_", "." or "-" (at most 128)` };
    }
    const allowed = nullable ? 'a number, a string, true/false or null (to delete it)' : 'a number, a string or true/false';
    return { property, error: `${where}property "${property}" must be ${allowed}` };
  }
  const where = path.length > 0 ? path.join('.') : 'payload';
  return { error: `${where}: ${issue.message}` };
}

function checkAgainstModel(model: DeviceModelSpec | undefined, values: Record<string, PropertyValue | null>): Refusal | null {
  if (model === undefined) return null;
  // writing=false: ReadOnly only restricts what the cloud may write, never what a device reports.
  const problem = checkProperties(model, values, false);
  return problem ? { property: problem.property, error: problem.message } : null;
}

/** Parses a `twin/reported` payload `{"properties": {...}}` (null deletes) and checks it against the model. */
export function parseReportedPayload(payload: Buffer, model: DeviceModelSpec | undefined): Parsed<Record<string, PropertyValue | null>> {
  const json = decodeJson(payload);
  if (!json.ok) return json;
  // Every report of a device with a model: the model's own check already implies what the full
  // schema checks (its property names are valid names, and checkProperties refuses any value not
  // of its property's type, all JSON primitives), so a report that fits the model needs only the
  // shape parsed (~1 µs less per report). Anything else goes through the full schema below,
  // which words the refusal.
  if (model !== undefined) {
    const shape = ReportedShapeSchema.safeParse(json.value);
    const values = shape.success ? shape.data.properties as Record<string, PropertyValue | null> : null;
    if (values !== null && checkProperties(model, values, false) === null) return { ok: true, value: values };
  }
  const parsed = ReportedPayloadSchema.safeParse(json.value);
  if (!parsed.success) return { ok: false, refusal: refusalFromIssue(parsed.error.issues[0]!, true) };
  const problem = checkAgainstModel(model, parsed.data.properties);
  if (problem) return { ok: false, refusal: problem };
  return { ok: true, value: parsed.data.properties };
}

/** A mapper's `mapper/state` message: `{"reachable": bool, "error"?: string}`. */
export function parseMapperStatePayload(payload: Buffer): Parsed<MapperDeviceState> {
  const json = decodeJson(payload);
  if (!json.ok) return json;
  const parsed = MapperDeviceStateSchema.safeParse(json.value);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, refusal: refusalFromIssue(parsed.error.issues[0]!, false) };
}

/**
 * Parses a `telemetry` payload, either `{"samples": [{"t"?, "values"}]}` or one
 * `{"t"?, "values"}`; a sample without `t` gets `now`.
 */
export function parseTelemetryPayload(payload: Buffer, model: DeviceModelSpec | undefined, now: string): Parsed<TelemetrySample[]> {
  const json = decodeJson(payload);
  if (!json.ok) return json;
  const isBatch = typeof json.value === 'object' && json.value !== null && 'samples' in json.value;
  // As for reports: with a model, checkProperties implies what the full value schemas check, so
  // samples that fit it need only their shape parsed; anything else takes the full path, which
  // words the refusal.
  if (model !== undefined) {
    const shape = parseSamples(json.value, isBatch, TelemetryBatchShapeSchema, TelemetrySampleShapeSchema);
    if ('samples' in shape) {
      const samples: TelemetrySample[] = [];
      for (const sample of shape.samples) {
        const values = sample.values as Record<string, PropertyValue>;
        if (!nonEmptyWithoutNull(values) || checkProperties(model, values, false) !== null) break;
        samples.push({ t: sample.t ?? now, values });
      }
      if (samples.length === shape.samples.length) return { ok: true, value: samples };
    }
  }
  const parsed = parseSamples(json.value, isBatch, TelemetryBatchInputSchema, TelemetrySampleInputSchema);
  if ('issue' in parsed) return { ok: false, refusal: refusalFromIssue(parsed.issue, false) };
  const samples: TelemetrySample[] = [];
  for (const [index, sample] of parsed.samples.entries()) {
    const where = isBatch ? `samples.${index}: ` : '';
    if (Object.keys(sample.values).length === 0) return { ok: false, refusal: { error: `${where}values must hold at least one property` } };
    const problem = checkAgainstModel(model, sample.values);
    if (problem) return { ok: false, refusal: { ...problem, error: `${where}${problem.error}` } };
    samples.push({ t: sample.t ?? now, values: sample.values });
  }
  return { ok: true, value: samples };
}

/** A sample's values hold at least one property and no null (checkProperties lets null through: it deletes a reported value). */
function nonEmptyWithoutNull(values: Record<string, unknown>): boolean {
  let any = false;
  for (const key in values) {
    if (!Object.hasOwn(values, key)) continue;
    if (values[key] === null) return false;
    any = true;
  }
  return any;
}

/**
 * Merges an accepted report into the twin. Only a report that changes a value bumps the
 * version and the changed properties' timestamps; a repeat of the current values changes
 * nothing but lastSeen (mappers re-report unchanged values every cycle).
 */
export function applyReported(twin: DeviceTwinState, patch: Record<string, PropertyValue | null>, at: string): { twin: DeviceTwinState; changed: boolean } {
  // Runs for every report a device sends: plain loops and object literals, no entries() or
  // spreads of the twin (this was ~4 % of the hub's CPU at saturation written with them).
  const names = Object.keys(patch);
  const current = twin.reported;
  let changed = false;
  for (const name of names) {
    const value = patch[name];
    if (value === null ? Object.hasOwn(current, name) : isNewValue(current, name, value)) {
      changed = true;
      break;
    }
  }
  if (!changed) return { twin: { reported: current, version: twin.version, metadata: twin.metadata, lastSeen: at, online: twin.online }, changed: false };
  const reported = { ...current };
  const metadata = { ...twin.metadata };
  for (const name of names) {
    const value = patch[name]!;
    if (value === null) {
      delete reported[name];
      delete metadata[name];
    } else if (isNewValue(current, name, value)) {
      reported[name] = value;
      metadata[name] = { updatedAt: at };
    }
  }
  return { twin: { reported, version: twin.version + 1, metadata, lastSeen: at, online: twin.online }, changed: true };
}

/** Whether setting `name` to `value` changes the reported section (an absent property always does). */
function isNewValue(current: Record<string, PropertyValue>, name: string, value: PropertyValue): boolean {
  return current[name] !== value || !Object.hasOwn(current, name);
}

/** The retained `twin/desired` message. */
export function desiredMessage(spec: DeviceSpec): { properties: Record<string, PropertyValue>; version: number } {
  return { properties: spec.desired, version: spec.desiredVersion };
}

/** The `twin/delta` message, or null when the device already reports every desired value. */
export function deltaMessage(spec: DeviceSpec, reported: Record<string, PropertyValue>): { properties: Record<string, PropertyValue>; version: number } | null {
  const delta = twinDelta(spec.desired, reported);
  return Object.keys(delta).length === 0 ? null : { properties: delta, version: spec.desiredVersion };
}

/**
 * The deltas to send a client that just subscribed (or resumed a session): one per device
 * whose delta topic a subscription matches, the client may receive, and that has a delta.
 */
export function deltasForSubscriptions(
  devices: readonly { device: Device; reported: Record<string, PropertyValue> }[],
  subs: readonly { topic: string; qos: number }[],
  mayReceive: (topic: string) => boolean,
): { topic: string; message: { properties: Record<string, PropertyValue>; version: number }; qos: 0 | 1 }[] {
  const out: { topic: string; message: { properties: Record<string, PropertyValue>; version: number }; qos: 0 | 1 }[] = [];
  for (const { device, reported } of devices) {
    const topic = deviceTopics(device.metadata.name).delta;
    const matching = subs.filter((s) => topicMatchesFilter(s.topic, topic));
    if (matching.length === 0 || !mayReceive(topic)) continue;
    const message = deltaMessage(device.spec, reported);
    if (message !== null) out.push({ topic, message, qos: matching.some((s) => s.qos > 0) ? 1 : 0 });
  }
  return out;
}

/** Identifies the desired section as published: republish only when this changes. */
export function desiredFingerprint(spec: DeviceSpec): string {
  return JSON.stringify([spec.desiredVersion, Object.entries(spec.desired).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}

export function errorMessage(refusal: Refusal, topic: string, payload: Buffer): ErrorMessage {
  const message: ErrorMessage = refusal.property === undefined
    ? { error: refusal.error, topic }
    : { error: refusal.error, property: refusal.property, topic };
  if (payload.length > 0) message.payload = payload.subarray(0, QUOTED_PAYLOAD_CHARS * 4).toString('utf8').slice(0, QUOTED_PAYLOAD_CHARS);
  return message;
}

export function statusMessage(online: boolean, at: string): { online: boolean; at: string } {
  return { online, at };
}

export function reportedTwin(twin: DeviceTwinState): ReportedTwin {
  return { reported: twin.reported, version: twin.version, metadata: twin.metadata };
}

/** The outbox entry carrying the whole reported section (the outbox keeps only the newest per device). */
export function twinReportedEntry(device: Device, twin: DeviceTwinState, offlineReason?: string): TwinReportedEntry {
  const name = device.metadata.name;
  return {
    kind: 'twinReported',
    key: name,
    body: {
      device: name,
      twin: reportedTwin(twin),
      online: twin.online,
      lastSeen: twin.lastSeen,
      observedGeneration: device.metadata.generation ?? 0,
      ...(!twin.online && offlineReason !== undefined ? { offlineReason } : {}),
    },
  };
}
