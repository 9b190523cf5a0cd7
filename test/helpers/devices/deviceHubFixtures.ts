import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { DeviceSchema, type Device, type DeviceModelSpec, type PropertyValue } from '../../../protocol/index.js';
import { afterEach, beforeAll, beforeEach } from 'vitest';
import { hashPassword } from '../../../edgecore/devices/broker/deviceCredentials.js';
import { DeviceHub, type DeviceHubOptions } from '../../../edgecore/devices/deviceHub.js';
import type { DeviceUpstreamEntry, TelemetryEntry, TwinReportedEntry } from '../../../edgecore/devices/twin/twinEngine.js';

/** Real hubs, clients and temp dirs for the devices tests, torn down by cleanup(). */

export const DEADLINE_MS = 20_000;

export const THERMOSTAT_MODEL: DeviceModelSpec = {
  protocol: 'virtual',
  properties: [
    { name: 'temperature', type: 'float', accessMode: 'ReadOnly', minimum: -40, maximum: 125 },
    { name: 'setpoint', type: 'float', accessMode: 'ReadWrite', minimum: 5, maximum: 35 },
    { name: 'mode', type: 'string', accessMode: 'ReadWrite' },
    { name: 'count', type: 'int', accessMode: 'ReadOnly' },
    { name: 'enabled', type: 'boolean', accessMode: 'ReadWrite' },
  ],
};

export function makeDevice(name: string, options: {
  credentialHash?: string; protocol?: string; desired?: Record<string, PropertyValue>; desiredVersion?: number; generation?: number; model?: DeviceModelSpec | null;
} = {}): Device {
  return DeviceSchema.parse({
    kind: 'Device',
    metadata: { name, generation: options.generation ?? 1 },
    spec: {
      model: 'thermostat',
      nodeName: 'edge-1',
      protocol: { name: options.protocol ?? 'virtual' },
      desired: options.desired ?? {},
      desiredVersion: options.desiredVersion ?? 0,
      ...(options.model === null ? {} : { modelSpec: options.model ?? THERMOSTAT_MODEL }),
      ...(options.credentialHash === undefined ? {} : { credentialHash: options.credentialHash }),
    },
  });
}

export interface Received {
  topic: string;
  json: unknown;
  retain: boolean;
}

export class HubTestKit {
  readonly dir = mkdtempSync(join(tmpdir(), 'device-hub-'));
  readonly dbPath = join(this.dir, 'devices.sqlite');
  readonly upstream: DeviceUpstreamEntry[] = [];
  private readonly hubs: DeviceHub[] = [];
  private readonly clients: MqttClient[] = [];

  async startHub(options: Partial<DeviceHubOptions> = {}): Promise<{ hub: DeviceHub; url: string; port: number; tlsPort?: number }> {
    const hub = new DeviceHub({
      db: this.dbPath, host: '127.0.0.1', port: 0, allowAnonymous: false,
      upstream: (entries) => this.upstream.push(...entries),
      ...options,
    });
    this.hubs.push(hub);
    const { port, tlsPort } = await hub.start();
    return { hub, url: `mqtt://127.0.0.1:${port}`, port, ...(tlsPort !== undefined ? { tlsPort } : {}) };
  }

  async stopHub(hub: DeviceHub): Promise<void> {
    this.hubs.splice(this.hubs.indexOf(hub), 1);
    await hub.close();
  }

  /** Connects and waits for CONNACK; records every message from the first packet on. */
  async connectClient(url: string, options: IClientOptions): Promise<{ client: MqttClient; received: Received[] }> {
    const client = connect(url, { reconnectPeriod: 0, connectTimeout: DEADLINE_MS, protocolVersion: 4, ...options });
    this.clients.push(client);
    const received: Received[] = [];
    client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
      let json: unknown = payload.toString();
      try { json = JSON.parse(payload.toString()); } catch { /* keep text */ }
      received.push({ topic, json, retain: packet.retain });
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    return { client, received };
  }

  /** Resolves with the connect error (e.g. "Connection refused: Bad username or password"). */
  async connectError(url: string, options: IClientOptions): Promise<Error> {
    const client = connect(url, { reconnectPeriod: 0, connectTimeout: DEADLINE_MS, protocolVersion: 4, ...options });
    this.clients.push(client);
    return new Promise<Error>((resolve, reject) => {
      client.once('connect', () => reject(new Error('connected although it should have been refused')));
      client.once('error', resolve);
    });
  }

  twinReports(device: string): TwinReportedEntry['body'][] {
    return this.upstream.filter((e): e is TwinReportedEntry => e.kind === 'twinReported' && e.key === device).map((e) => e.body);
  }

  telemetry(device: string): TelemetryEntry['body'][] {
    return this.upstream.filter((e): e is TelemetryEntry => e.kind === 'telemetry' && e.key === device).map((e) => e.body);
  }

  async cleanup(): Promise<void> {
    for (const client of this.clients.splice(0)) await client.endAsync(true);
    for (const hub of this.hubs.splice(0)) await hub.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits for a message on `topic` and returns its JSON. */
export async function nextMessage(received: Received[], topic: string, from = 0): Promise<Received> {
  await waitFor(() => received.slice(from).some((m) => m.topic === topic), `a message on ${topic}`);
  return received.slice(from).find((m) => m.topic === topic)!;
}

/** The QoS the broker granted for one filter; 128 when it refused it (mqtt.js rejects those). */
export async function grantedQos(client: MqttClient, filter: string, qos: 0 | 1 = 1): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos });
    return granted[0]?.qos ?? -1;
  } catch (err) {
    const packet: unknown = (err as { packet?: unknown }).packet;
    const codes = typeof packet === 'object' && packet !== null ? (packet as { granted?: unknown }).granted : undefined;
    if (Array.isArray(codes) && typeof codes[0] === 'number') return codes[0];
    throw err;
  }
}

/** Topics with a retained message in the hub's file, read through a second connection (WAL allows it). */
export function retainedTopics(dbPath: string): string[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare<[], { topic: string }>('SELECT topic FROM mqtt_retained ORDER BY topic').all().map((r) => r.topic);
  } finally {
    db.close();
  }
}

/**
 * The hooks a hub test file needs: a fresh kit for every test, cleaned up after it, and scrypt
 * hashes of the given passwords, made once for the file (hashing is the slow part).
 */
export function hubTestContext<K extends string>(passwords: Record<K, string>): { readonly kit: HubTestKit; readonly hash: Readonly<Record<K, string>> } {
  let current: HubTestKit | undefined;
  const hash = {} as Record<K, string>;
  beforeAll(async () => {
    await Promise.all((Object.entries(passwords) as [K, string][]).map(async ([key, password]) => { hash[key] = await hashPassword(password); }));
  });
  beforeEach(() => { current = new HubTestKit(); });
  afterEach(async () => { await current?.cleanup(); });
  return {
    get kit(): HubTestKit {
      if (current === undefined) throw new Error('the hub kit exists only inside a test');
      return current;
    },
    hash,
  };
}
