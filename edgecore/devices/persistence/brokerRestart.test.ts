import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Aedes } from 'aedes';
import { connect, type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import type { UnreadableRow } from './packetCodec.js';
import { SqlitePersistence } from './sqlitePersistence.js';

/**
 * The point of a persistent broker store: a real aedes broker on 127.0.0.1 with
 * SqlitePersistence is stopped and a new one started on the same file; what MQTT promises to
 * keep (retained messages, a clean: false session's subscriptions and its queued QoS 1
 * messages) reaches the clients of the new broker.
 */

interface RunningBroker {
  broker: Aedes;
  server: Server;
  persistence: SqlitePersistence;
  url: string;
}

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  qos: number;
}

const DEADLINE_MS = 20_000;

let dir: string;
const brokers: RunningBroker[] = [];
const clients: MqttClient[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mqtt-broker-restart-'));
});

afterEach(async () => {
  for (const client of clients.splice(0)) await client.endAsync(true);
  for (const running of brokers.splice(0)) await stopBroker(running);
  rmSync(dir, { recursive: true, force: true });
});

async function startBroker(path: string, onUnreadable?: (row: UnreadableRow) => void): Promise<RunningBroker> {
  const persistence = new SqlitePersistence({ path, ...(onUnreadable ? { onUnreadable } : {}) });
  const broker = await Aedes.createBroker({ persistence });
  const server = createServer((socket) => broker.handle(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('broker is not listening on a TCP port');
  const running = { broker, server, persistence, url: `mqtt://127.0.0.1:${address.port}` };
  brokers.push(running);
  return running;
}

async function stopBroker(running: RunningBroker): Promise<void> {
  const index = brokers.indexOf(running);
  if (index !== -1) brokers.splice(index, 1);
  await new Promise<void>((resolve) => running.broker.close(() => resolve()));
  await new Promise<void>((resolve, reject) => running.server.close((err) => (err ? reject(err) : resolve())));
  await running.persistence.destroy();
}

/** Connects, recording every message from the first packet on (queued ones can follow the CONNACK at once). */
function connectClient(url: string, options: IClientOptions): { client: MqttClient; received: Received[]; connack: Promise<IConnackPacket> } {
  const client = connect(url, { reconnectPeriod: 0, connectTimeout: DEADLINE_MS, ...options });
  clients.push(client);
  const received: Received[] = [];
  client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
    received.push({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos });
  });
  const connack = new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  return { client, received, connack };
}

async function disconnect(client: MqttClient): Promise<void> {
  await client.endAsync();
  clients.splice(clients.indexOf(client), 1);
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function queued(persistence: SqlitePersistence, clientId: string): Promise<number> {
  const stream: Readable = persistence.outgoingStream({ id: clientId });
  let count = 0;
  for await (const _packet of stream) count++;
  return count;
}

describe('aedes with SqlitePersistence across a broker restart', () => {
  it('delivers the retained message and the QoS 1 message queued for an offline session', async () => {
    const dbPath = join(dir, 'broker.sqlite');
    const first = await startBroker(dbPath);

    // A device opens a persistent session with a QoS 1 subscription, then goes offline.
    const subscriber = connectClient(first.url, { clientId: 'device-sub', clean: false });
    expect((await subscriber.connack).sessionPresent).toBe(false);
    await subscriber.client.subscribeAsync('devices/+/telemetry', { qos: 1 });
    const gone = new Promise<void>((resolve) => {
      first.broker.on('clientDisconnect', (client) => {
        if (client.id === 'device-sub') resolve();
      });
    });
    await disconnect(subscriber.client);
    await gone;

    // While it is offline: a retained message, and a QoS 1 message for its subscription.
    const publisher = connectClient(first.url, { clientId: 'device-pub', clean: true });
    await publisher.connack;
    await publisher.client.publishAsync('devices/d1/config', 'config-v1', { qos: 1, retain: true });
    await publisher.client.publishAsync('devices/d1/telemetry', 'reading-42', { qos: 1 });
    await disconnect(publisher.client);
    expect(await queued(first.persistence, 'device-sub')).toBe(1);

    await stopBroker(first);
    const second = await startBroker(dbPath);

    // The session comes back with its subscription and receives what was queued for it.
    const resumed = connectClient(second.url, { clientId: 'device-sub', clean: false });
    expect((await resumed.connack).sessionPresent).toBe(true);
    await waitFor(() => resumed.received.length > 0, 'the queued message');
    expect(resumed.received).toEqual([{ topic: 'devices/d1/telemetry', payload: 'reading-42', retain: false, qos: 1 }]);
    // Its PUBACK clears the queue.
    await waitFor(async () => (await queued(second.persistence, 'device-sub')) === 0, 'the queue to be cleared by the ack');

    // The restored subscription routes live messages again.
    const publisher2 = connectClient(second.url, { clientId: 'device-pub', clean: true });
    await publisher2.connack;
    await publisher2.client.publishAsync('devices/d2/telemetry', 'reading-43', { qos: 1 });
    await waitFor(() => resumed.received.length > 1, 'a live message on the restored subscription');
    expect(resumed.received[1]).toEqual({ topic: 'devices/d2/telemetry', payload: 'reading-43', retain: false, qos: 1 });

    // A new subscriber gets the retained message stored by the previous broker.
    const viewer = connectClient(second.url, { clientId: 'viewer', clean: true });
    await viewer.connack;
    await viewer.client.subscribeAsync('devices/+/config', { qos: 1 });
    await waitFor(() => viewer.received.length > 0, 'the retained message');
    expect(viewer.received).toEqual([{ topic: 'devices/d1/config', payload: 'config-v1', retain: true, qos: 1 }]);
  });

  it('drops stored packets it cannot read back, and serves the rest: no crash, no session stuck', async () => {
    const dbPath = join(dir, 'broker.sqlite');
    const first = await startBroker(dbPath);
    const subscriber = connectClient(first.url, { clientId: 'device-sub', clean: false });
    await subscriber.connack;
    await subscriber.client.subscribeAsync('devices/+/telemetry', { qos: 1 });
    await disconnect(subscriber.client);
    const publisher = connectClient(first.url, { clientId: 'device-pub', clean: true });
    await publisher.connack;
    await publisher.client.publishAsync('devices/d1/config', 'config-v1', { qos: 1, retain: true });
    await publisher.client.publishAsync('devices/d2/config', 'config-v2', { qos: 1, retain: true });
    await publisher.client.publishAsync('devices/d1/telemetry', 'reading-42', { qos: 1 });
    await publisher.client.publishAsync('devices/d1/telemetry', 'reading-43', { qos: 1 });
    await disconnect(publisher.client);
    expect(await queued(first.persistence, 'device-sub')).toBe(2);
    await stopBroker(first);

    // A torn write or a hand edit: one retained row is not JSON, one queued packet lost its topic.
    const db = new Database(dbPath);
    db.prepare("UPDATE mqtt_retained SET packet = '{not json' WHERE topic = 'devices/d1/config'").run();
    db.prepare(`UPDATE mqtt_outgoing SET packet = '{"cmd":"publish","qos":1}' WHERE seq = (SELECT MIN(seq) FROM mqtt_outgoing)`).run();
    db.close();

    const dropped: UnreadableRow[] = [];
    const second = await startBroker(dbPath, (row) => dropped.push(row));
    // Before, the session's queue stream failed on every reconnect and closed the client.
    const resumed = connectClient(second.url, { clientId: 'device-sub', clean: false });
    expect((await resumed.connack).sessionPresent).toBe(true);
    await waitFor(() => resumed.received.length > 0, 'the readable queued message');
    expect(resumed.received).toEqual([{ topic: 'devices/d1/telemetry', payload: 'reading-43', retain: false, qos: 1 }]);
    // Before, the retained stream threw out of aedes: an uncaught exception, the end of edgecore.
    const viewer = connectClient(second.url, { clientId: 'viewer', clean: true });
    await viewer.connack;
    await viewer.client.subscribeAsync('devices/+/config', { qos: 1 });
    await waitFor(() => viewer.received.length > 0, 'the readable retained message');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(viewer.received).toEqual([{ topic: 'devices/d2/config', payload: 'config-v2', retain: true, qos: 1 }]);
    expect(viewer.client.connected && resumed.client.connected).toBe(true);

    expect(dropped).toEqual([
      { table: 'mqtt_outgoing', key: expect.stringMatching(/^device-sub #\d+$/), reason: 'stored packet is a publish without a topic' },
      { table: 'mqtt_retained', key: 'devices/d1/config', reason: expect.stringContaining('JSON') },
    ]);
    expect(second.persistence.unreadableRowsDropped).toBe(2);
    // Dropped for good: a second subscriber is told nothing more, and nothing is left queued.
    const again = connectClient(second.url, { clientId: 'viewer-2', clean: true });
    await again.connack;
    await again.client.subscribeAsync('devices/+/config', { qos: 1 });
    await waitFor(() => again.received.length > 0, 'the retained message, again');
    expect(again.received.map((m) => m.topic)).toEqual(['devices/d2/config']);
    await waitFor(async () => (await queued(second.persistence, 'device-sub')) === 0, 'the queue to be empty');
    expect(dropped).toHaveLength(2);
  });

  it('drops an unreadable will instead of failing the stream of orphaned wills', async () => {
    const dbPath = join(dir, 'wills.sqlite');
    const persistence = new SqlitePersistence({ path: dbPath, onUnreadable: () => undefined });
    await persistence.setup({ id: 'old-broker', counter: 0 });
    for (const id of ['a', 'b']) await persistence.putWill({ id }, { cmd: 'publish', topic: `devices/${id}/status`, payload: 'offline', qos: 1, retain: true });
    await persistence.destroy();
    const db = new Database(dbPath);
    db.prepare("UPDATE mqtt_wills SET packet = '[]' WHERE client_id = 'a'").run();
    db.close();
    const reopened = new SqlitePersistence({ path: dbPath });
    await reopened.setup({ id: 'new-broker', counter: 0 });
    const wills: unknown[] = [];
    for await (const will of reopened.streamWill({})) wills.push(will);
    expect(wills).toMatchObject([{ topic: 'devices/b/status', clientId: 'b' }]);
    expect(reopened.unreadableRowsDropped).toBe(1);
    expect(await reopened.getWill({ id: 'a' })).toBeUndefined();
    await reopened.destroy();
  });
});
