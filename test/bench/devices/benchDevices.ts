import { DeviceSchema, type Device, type DeviceModelSpec } from '../../../protocol/index.js';

/** The benchmark's fleet: N devices of one model, all with the same MQTT password. */

export const BENCH_MODEL: DeviceModelSpec = {
  protocol: 'virtual',
  properties: [
    { name: 'temperature', type: 'float', accessMode: 'ReadOnly', minimum: -40, maximum: 125 },
    // Carries the send time (µs on the run's shared time axis): the only way to timestamp a
    // report whose payload the hub checks against the model.
    { name: 'counter', type: 'int', accessMode: 'ReadOnly' },
  ],
};

export const BENCH_NODE = 'bench-edge';

/** bench-dev-0001 … ; DNS-1123 names that sort in creation order. */
export function deviceNames(count: number): string[] {
  const width = Math.max(4, String(count).length);
  return Array.from({ length: count }, (_, i) => `bench-dev-${String(i + 1).padStart(width, '0')}`);
}

/**
 * Devices sharing one credential hash: scrypt costs ~50 ms per hash, and the hub's verifier
 * remembers a (hash, password) pair that checked out, so one hash also keeps the connect
 * storm cheap after the first login (each device still logs in with its own name).
 */
export function benchDevices(names: string[], credentialHash: string): Device[] {
  return names.map((name) => DeviceSchema.parse({
    kind: 'Device',
    metadata: { name, generation: 1 },
    spec: { model: 'bench-thermometer', nodeName: BENCH_NODE, protocol: { name: 'virtual' }, modelSpec: BENCH_MODEL, credentialHash },
  }));
}

export function reportedTopic(device: string): string {
  return `ef/devices/${device}/twin/reported`;
}

/** A temperature that moves with every publish (20.0 … 39.9 °C, inside the model's range). */
const temperatureAt = (seq: number): number => 20 + (seq % 200) / 10;

/** A report whose temperature moves every time (so the twin changes) and carries the send time. */
export function reportedPayload(seq: number, sentUs: number): string {
  return `{"properties":{"temperature":${temperatureAt(seq)},"counter":${sentUs}}}`;
}

export function telemetryTopic(device: string): string {
  return `ef/devices/${device}/telemetry`;
}

/** One telemetry sample (timestamped by the edge) carrying the send time, like a report. */
export function telemetryPayload(seq: number, sentUs: number): string {
  return `{"values":{"temperature":${temperatureAt(seq)},"counter":${sentUs}}}`;
}

/** Whether a device's n-th publish (from 0) is telemetry: every `every`-th one; never when every is 0. */
export function isTelemetryTurn(n: number, every: number): boolean {
  return every > 0 && n % every === every - 1;
}

/** The send time out of a reported or telemetry payload, or undefined when it holds none. */
export function sentTimeOf(payload: Buffer | string): number | undefined {
  try {
    const parsed = JSON.parse(payload.toString()) as { properties?: { counter?: unknown }; values?: { counter?: unknown } } | null;
    const counter = parsed?.properties?.counter ?? parsed?.values?.counter;
    return typeof counter === 'number' && Number.isInteger(counter) ? counter : undefined;
  } catch {
    return undefined;
  }
}

/** Splits items into `parts` nearly equal consecutive slices (none empty unless items run out). */
export function splitEvenly<T>(items: readonly T[], parts: number): T[][] {
  const out: T[][] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(items.length / parts) + (i < items.length % parts ? 1 : 0);
    out.push(items.slice(start, start + size));
    start += size;
  }
  return out.filter((slice) => slice.length > 0);
}
