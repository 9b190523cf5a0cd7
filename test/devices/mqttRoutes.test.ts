import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { killClients, mosquittoClientsAvailable, runClient } from '../helpers/devices/mosquittoClients.js';
import { makeOperatorBroker, operatorBrokerAvailable, operatorClientArgs, type OperatorBroker } from '../helpers/routes/operatorBroker.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const skip = !mosquittoClientsAvailable || !operatorBrokerAvailable;
if (skip) console.warn('[routes to an operator broker, end to end] SKIPPED: needs /usr/sbin/mosquitto, mosquitto_passwd, mosquitto-clients and openssl');

interface RouteNodeStatus { node: string; connected?: boolean; lastError?: string | null; forwarded?: number; queueDepth?: number }

/**
 * A Route declared in the cloud, with its password in a Secret, reaching Debian's mosquitto over
 * TLS from a real edgecore; and a route whose Secret is missing shows why, while the other flows.
 */
describe.skipIf(skip)('routes to an operator MQTT broker, declared in the cloud', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let broker: OperatorBroker;
  let mqttPort: number;
  let password = '';
  let out = '';

  const publish = (count: number) => run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort), '-V', 'mqttv311', '-u', 'thermo-1', '-P', password,
    '-i', 'thermo-1-pub', '-q', '1', '-t', 'ef/devices/thermo-1/telemetry', '-m', JSON.stringify({ values: { count } })]);
  const routeStatus = async (name: string) => (await api(cloud).call<{ status: { nodes: RouteNodeStatus[] } }>('GET', `/routes/${name}`)).body.status.nodes[0];

  beforeAll(async () => {
    broker = await makeOperatorBroker(fleet.tempDir('operator-broker-'));
    const reader = runClient('mosquitto_sub', [...operatorClientArgs(broker, 'operator'), '-q', '1', '-t', 'site-7/#', '-v'], 120_000);
    reader.child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    mqttPort = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'counter' }, spec: { protocol: 'virtual', properties: [{ name: 'count', type: 'int' }] } })).status).toBe(201);
    const r = await api(cloud).call<{ credentials: { password: string } }>('POST', '/devices', { metadata: { name: 'thermo-1' }, spec: { model: 'counter', nodeName: 'edge-1', protocol: { name: 'virtual' } } });
    password = r.body.credentials.password;
    await waitFor('the device on the edge', async () => ((await fleet.edgeStatus(edge)) as unknown as { mqtt: { devices: unknown[] } }).mqtt.devices.length === 1);
  });
  afterAll(async () => { await killClients(); await fleet.cleanup(); await broker.stop(); });

  it('forwards through TLS with the password from a Secret; a route whose Secret is missing says so and the other goes on', async () => {
    expect((await api(cloud).call('POST', '/secrets', { metadata: { name: 'ops-broker' }, data: { password: broker.password } })).status).toBe(201);
    const destination = (secret: string) => ({
      type: 'mqtt', url: broker.url, ca: broker.caPem, topicPrefix: 'site-7/', username: broker.username, passwordSecret: { name: secret, key: 'password' },
    });
    const topics = ['ef/devices/+/telemetry'];
    expect((await api(cloud).call('POST', '/routes', { metadata: { name: 'to-ops' }, spec: { source: { topics }, destination: destination('ops-broker') } })).status).toBe(201);
    expect((await api(cloud).call('POST', '/routes', { metadata: { name: 'to-nowhere' }, spec: { source: { topics }, destination: { ...destination('no-such-secret'), clientId: 'other' } } })).status).toBe(201);
    await waitFor('the route connected', async () => (await routeStatus('to-ops'))?.connected === true, 30_000);
    // Until mosquitto_sub prints the first one its subscription may not be in place: publish until it does.
    let count = 0;
    await waitFor('the first routed message at mosquitto', async () => {
      await publish(++count);
      return out.includes('site-7/ef/devices/thermo-1/telemetry');
    }, 30_000, 300);
    const counts = () => out.split('\n').filter((l) => l.startsWith('site-7/ef/devices/thermo-1/telemetry '))
      .map((l) => (JSON.parse(l.slice(l.indexOf(' ') + 1)) as { values: { count: number } }).values.count);
    for (let i = 1; i <= 5; i++) await publish(count + i);
    await waitFor('five more at mosquitto', async () => counts().includes(count + 5));
    // Those before the subscription was in place are not there; from the first that is, each once and in order.
    const seen = counts();
    expect(seen).toEqual(Array.from({ length: count + 5 - seen[0]! + 1 }, (_, i) => seen[0]! + i));

    const nowhere = await waitFor('the failing route\'s error in the cloud', async () => {
      const s = await routeStatus('to-nowhere');
      // Counters reach the cloud every few seconds: wait for a report that saw the messages.
      return s?.lastError && (s.queueDepth ?? 0) >= 5 ? s : undefined;
    }, 30_000);
    expect(nowhere).toMatchObject({ node: 'edge-1', connected: false, lastError: expect.stringMatching(/secret "no-such-secret" key "password" does not exist/) });
  });
});
