import { z } from 'zod';
import { MapperDeviceListSchema, MapperDeviceSchema, type MapperDeviceEntry } from '../../protocol/index.js';

/**
 * The edge's device list for one mapper: `GET <edgeUrl>/mapper/v1/devices?protocol=<p>`, read
 * with the contract's schema (protocol/devices.ts). The envelope is checked first and each
 * device on its own, so one malformed device is skipped (and named in the log) instead of
 * hiding every other device.
 */
/** A device this mapper can serve: its model copy is there. */
export type MapperDevice = MapperDeviceEntry & { model: NonNullable<MapperDeviceEntry['model']> };
export type PropertyVisitor = MapperDevice['properties'][number];

const DeviceListEnvelopeSchema = MapperDeviceListSchema.extend({ devices: z.array(z.unknown()) });

export interface DeviceList {
  node: string;
  devices: MapperDevice[];
  /** Entries that did not parse, with the reason (named by their `name` when it is there). */
  rejected: { name: string; reason: string }[];
}

export class DeviceListError extends Error {}

/** Parses the answer body; throws DeviceListError when the envelope itself is wrong. */
export function parseDeviceList(body: unknown, protocol: string): DeviceList {
  const envelope = DeviceListEnvelopeSchema.safeParse(body);
  if (!envelope.success) {
    const issue = envelope.error.issues[0]!;
    throw new DeviceListError(`device list answer is malformed at "${issue.path.join('.')}": ${issue.message}`);
  }
  const list: DeviceList = { node: envelope.data.node, devices: [], rejected: [] };
  const seen = new Set<string>();
  envelope.data.devices.forEach((entry, index) => {
    const label = typeof entry === 'object' && entry !== null && 'name' in entry && typeof entry.name === 'string' ? entry.name : `#${index}`;
    const parsed = MapperDeviceSchema.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      list.rejected.push({ name: label, reason: `"${issue.path.join('.')}": ${issue.message}` });
    } else if (parsed.data.model === null) {
      const model = parsed.data.modelName ? `DeviceModel "${parsed.data.modelName}"` : 'its DeviceModel';
      list.rejected.push({ name: label, reason: `the edge has no copy of ${model} in this device yet (the cloud copies it when the device is applied); check that the model exists: edgectl get devicemodels` });
    } else if (parsed.data.protocol.name !== protocol) {
      list.rejected.push({ name: label, reason: `speaks protocol "${parsed.data.protocol.name}", this mapper serves "${protocol}"` });
    } else if (seen.has(parsed.data.name)) {
      list.rejected.push({ name: label, reason: 'listed twice' });
    } else {
      seen.add(parsed.data.name);
      list.devices.push({ ...parsed.data, model: parsed.data.model });
    }
  });
  return list;
}

export async function fetchDeviceList(edgeUrl: string, protocol: string, password: string, timeoutMs = 10_000): Promise<DeviceList> {
  const url = `${edgeUrl.replace(/\/+$/, '')}/mapper/v1/devices?protocol=${encodeURIComponent(protocol)}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${password}`, accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause;
    throw new DeviceListError(`cannot reach the edge at ${url}: ${cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) throw new DeviceListError(`the edge answered ${res.status} for ${url}: ${text.slice(0, 200)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new DeviceListError(`the edge answered ${url} with something that is not JSON: ${text.slice(0, 200)}`);
  }
  return parseDeviceList(body, protocol);
}

/** JSON with object keys sorted, so two equal specs give the same string whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * What makes a running device worker obsolete: protocol config, visitors, model. `desired` is
 * left out on purpose: it changes all the time and reaches the mapper over MQTT anyway.
 */
export function deviceFingerprint(device: MapperDevice): string {
  return canonicalJson({ protocol: device.protocol, properties: device.properties, model: device.model });
}

/** Which workers to start, stop, or restart (stop + start) to match a freshly fetched list. */
export function diffDevices(running: ReadonlyMap<string, string>, next: readonly MapperDevice[]): { added: MapperDevice[]; removed: string[]; changed: MapperDevice[] } {
  const added: MapperDevice[] = [];
  const changed: MapperDevice[] = [];
  const names = new Set<string>();
  for (const device of next) {
    names.add(device.name);
    const fingerprint = running.get(device.name);
    if (fingerprint === undefined) added.push(device);
    else if (fingerprint !== deviceFingerprint(device)) changed.push(device);
  }
  const removed = [...running.keys()].filter((name) => !names.has(name));
  return { added, removed, changed };
}
