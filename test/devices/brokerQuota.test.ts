import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { connect, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { rawConnect } from '../helpers/devices/rawMqtt.js';
import { sleep, waitFor } from '../helpers/wait.js';

const QUEUE_LIMIT = 100;

/**
 * Issue 20, per-device quotas: one device credential opening 100 persistent sessions and asking
 * for its twin 200 times gave 20,000 queued rows and +20 MB in seconds. Re-run against a real
 * edgecore (its queue limit lowered so the run shows drops).
 */
describe('edge broker per-device quotas', () => {
  const fleet = new Fleet();
  const clients: MqttClient[] = [];
  let cloud: Cloud;
  let edge: Edge;
  let port = 0;
  let password = '';

  const dbFiles = () => ['edge.db', 'edge.db-wal'].reduce((sum, f) => { try { return sum + statSync(join(edge.dataDir, f)).size; } catch { return sum; } }, 0);
  const rows = () => {
    const db = new Database(join(edge.dataDir, 'edge.db'), { readonly: true });
    try {
      return {
        queued: (db.prepare('SELECT COUNT(*) AS n FROM mqtt_outgoing').get() as { n: number }).n,
        sessions: (db.prepare('SELECT COUNT(DISTINCT client_id) AS n FROM mqtt_subscriptions').get() as { n: number }).n,
      };
    } finally {
      db.close();
    }
  };
  const connectAs = async (clientId: string, clean: boolean): Promise<MqttClient> => {
    const client = connect(`mqtt://127.0.0.1:${port}`, { clientId, username: 'tank', password, clean, protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(client);
    await new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject); });
    return client;
  };

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1'),
      extra: ['--mqtt-max-queued-per-session', String(QUEUE_LIMIT)] });
    port = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'm' }, spec: { protocol: 'virtual', properties: [{ name: 'level', type: 'int' }] } });
    password = (await api(cloud).call<{ credentials: { password: string } }>('POST', '/devices', { metadata: { name: 'tank' }, spec: { model: 'm', nodeName: 'edge-1', protocol: { name: 'virtual' } } })).body.credentials.password;
    await waitFor('device on the edge', async () => JSON.stringify(await fleet.edgeStatus(edge)).includes('"tank"'));
  });
  afterAll(async () => {
    for (const client of clients) client.end(true);
    await fleet.cleanup();
  });

  it('100 persistent sessions × 200 twin/get from one credential: at most 2 sessions, each queue bounded, drops counted and shown', async () => {
    const filesBefore = dbFiles();
    // Bounded: 100 sessions, one after another, each subscribing and going away.
    for (let i = 0; i < 100; i++) {
      const session = await connectAs(`tank-s${i}`, false);
      await session.subscribeAsync('ef/devices/tank/twin/get/result', { qos: 1 });
      await session.endAsync();
    }
    expect(rows().sessions).toBeLessThanOrEqual(2);
    const asker = await connectAs('tank', true);
    for (let i = 0; i < 200; i++) await asker.publishAsync('ef/devices/tank/twin/get', '{}', { qos: 1 });
    // The answers go out after their commits: wait (bounded) until the count settles.
    let last = -1;
    await waitFor('queued rows settle', async () => {
      const now = rows().queued;
      const settled = now === last;
      last = now;
      await sleep(200);
      return settled;
    }, 20_000);
    const after = rows();
    expect(after.sessions).toBeLessThanOrEqual(2);
    expect(after.queued).toBeLessThanOrEqual(2 * QUEUE_LIMIT);
    expect(dbFiles() - filesBefore).toBeLessThan(4 * 1024 * 1024);
    const status = await (await fetch(`${edge.statusUrl}/status`)).json() as { mqtt: { queuedDropped?: number } };
    expect(status.mqtt.queuedDropped).toBe(2 * (200 - QUEUE_LIMIT));
    expect(await (await fetch(`${edge.statusUrl}/metrics`)).text()).toContain(`edgefleet_edge_mqtt_queued_dropped_total ${2 * (200 - QUEUE_LIMIT)}`);
    const discarded = edge.proc.lines.filter((l) => l.msg === 'persistent session discarded: the device is over its session quota');
    expect(discarded).toHaveLength(98);
    // One WARN per session per minute, not one per dropped message.
    expect(edge.proc.lines.filter((l) => String(l.msg).startsWith('queued MQTT messages dropped')).length).toBeLessThanOrEqual(2);
    // The device's newest session still gets the newest answers when it comes back.
    const back = await connectAs('tank-s99', false);
    const got: string[] = [];
    back.on('message', (topic) => got.push(topic));
    await waitFor('queued answers delivered', () => got.length >= QUEUE_LIMIT);
    await back.endAsync();
    expect(edge.proc.exitCode).toBeUndefined();
  }, 120_000);

  it('a third persistent session while two are connected is refused; a clean one still gets in', async () => {
    const first = await connectAs('tank-a', false);
    await first.subscribeAsync('ef/devices/tank/twin/get/result', { qos: 1 });
    const second = await connectAs('tank-b', false);
    await second.subscribeAsync('ef/devices/tank/twin/get/result', { qos: 1 });
    const third = await rawConnect({ port, clientId: 'tank-c', username: 'tank', password, clean: false });
    third.socket.destroy();
    expect(third.code).toBe(3);
    const clean = await rawConnect({ port, clientId: 'tank-d', username: 'tank', password, clean: true });
    clean.socket.destroy();
    expect(clean.code).toBe(0);
    expect(first.connected && second.connected).toBe(true);
  }, 60_000);
});
