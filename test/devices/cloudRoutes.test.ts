import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const HAVE_MOSQUITTO = existsSync('/usr/bin/mosquitto_pub');
if (!HAVE_MOSQUITTO) console.warn('[routes to the cloud] SKIPPED: mosquitto-clients not installed (apt-get install -y mosquitto-clients)');

interface RoutedItem { id: number; node: string; seq: number; topic: string; payload: string; encoding: string }

/**
 * Issue 24, routes to the cloud, end to end: real cloudcore and edgecore (dist binaries), the link
 * through a TCP proxy the test cuts, a device played by Debian's mosquitto_pub.
 */
describe.skipIf(!HAVE_MOSQUITTO)('routes to the cloud', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let proxy: TcpProxy;
  let edge: Edge;
  let mqttPort: number;
  let password = '';

  const publish = (count: number) => run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort), '-V', 'mqttv311', '-u', 'thermo-1', '-P', password,
    '-i', 'thermo-1-pub', '-q', '1', '-t', 'ef/devices/thermo-1/telemetry', '-m', JSON.stringify({ values: { temperature: 20, count } })]);
  const messages = async (route: string): Promise<RoutedItem[]> => {
    const items: RoutedItem[] = [];
    for (let after = 0; ;) {
      const page = (await api(cloud).call<{ items: RoutedItem[]; next: number }>('GET', `/routes/${route}/messages?after=${after}&limit=1000`)).body;
      items.push(...page.items);
      if (page.items.length === 0) return items;
      after = page.next;
    }
  };
  const counts = (items: RoutedItem[]) => items.map((m) => (JSON.parse(m.payload) as { values: { count: number } }).values.count);

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    proxy = new TcpProxy(cloud.port);
    const url = await proxy.start();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: url, joinToken: await api(cloud).token('edge-1') });
    mqttPort = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'thermometer' }, spec: { protocol: 'virtual', properties: [
      { name: 'temperature', type: 'float' }, { name: 'count', type: 'int' },
    ] } })).status).toBe(201);
    const r = await api(cloud).call<{ credentials: { password: string } }>('POST', '/devices', { metadata: { name: 'thermo-1' }, spec: { model: 'thermometer', nodeName: 'edge-1', protocol: { name: 'virtual' } } });
    expect(r.status).toBe(201);
    password = r.body.credentials.password;
    await waitFor('the device on the edge', async () => ((await fleet.edgeStatus(edge)) as unknown as { mqtt: { devices: unknown[] } }).mqtt.devices.length === 1);
  });
  afterAll(async () => { await fleet.cleanup(); await proxy.close(); });

  it('refuses a Route with a bad field, naming it', async () => {
    const post = (spec: unknown, name = 'bad') => api(cloud).call<{ error: string; field?: string }>('POST', '/routes', { metadata: { name }, spec });
    const filter = await post({ source: { topics: ['ef/devices/#/telemetry'] }, destination: { type: 'cloud' } });
    expect(filter.status).toBe(400);
    expect(filter.body.error).toMatch(/spec\.source\.topics\.0.*not a valid MQTT topic filter: "#" must be a whole level and the last one/);
    const plain = await post({ source: { topics: ['apps/#'] }, destination: { type: 'mqtt', url: 'mqtt://127.0.0.1:1883' } });
    expect(plain.status).toBe(400);
    expect(plain.body.error).toMatch(/spec\.destination\.url.*allowPlaintext/);
    const limit = await post({ source: { topics: ['apps/#'] }, destination: { type: 'cloud' }, limits: { maxMessageBytes: 0 } });
    expect(limit.status).toBe(400);
    expect(limit.body.error).toMatch(/spec\.limits\.maxMessageBytes/);
    expect((await api(cloud).call('GET', '/routes/bad')).status).toBe(404);
  });

  it('delivers routed telemetry to the cloud in order; across a link cut nothing is lost or doubled', async () => {
    const created = await api(cloud).call('POST', '/routes', { metadata: { name: 'telemetry-up' }, spec: { source: { topics: ['ef/devices/+/telemetry'] }, destination: { type: 'cloud' } } });
    expect(created.status).toBe(201);
    await edge.proc.waitForLog('route running');
    for (let i = 1; i <= 5; i++) await publish(i);
    await waitFor('five routed messages in the cloud', async () => (await messages('telemetry-up')).length === 5);

    proxy.cut();
    await waitFor('the edge sees the link down', async () => (await fleet.edgeStatus(edge)).link.state !== 'connected');
    for (let i = 6; i <= 30; i++) await publish(i);
    expect((await messages('telemetry-up')).length).toBe(5);
    proxy.restore();

    const all = await waitFor('all thirty after reconnect', async () => {
      const items = await messages('telemetry-up');
      return items.length >= 30 ? items : undefined;
    }, 60_000);
    expect(counts(all)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(all.map((m) => m.seq)).size).toBe(30);
    expect(all.every((m) => m.node === 'edge-1' && m.topic === 'ef/devices/thermo-1/telemetry' && m.encoding === 'utf8')).toBe(true);

    const route = await waitFor('the node\'s counters on the route', async () => {
      const r = (await api(cloud).call<{ status: { nodes: { node: string; forwarded?: number; queueDepth?: number }[] } }>('GET', '/routes/telemetry-up')).body;
      return r.status.nodes[0]?.forwarded === 30 ? r : undefined;
    }, 30_000);
    expect(route.status.nodes).toEqual([expect.objectContaining({ node: 'edge-1', matched: 30, queued: 30, forwarded: 30, queueDepth: 0, destination: 'cloud' })]);
  });

  it('an operator publish reaches the node\'s broker (seen through a route back), only on application topics', async () => {
    expect((await api(cloud).call('POST', '/routes', { metadata: { name: 'commands-echo' }, spec: { source: { topics: ['apps/commands/#'] }, destination: { type: 'cloud' } } })).status).toBe(201);
    await waitFor('the echo route on the edge', async () => edge.proc.lines.some((l) => l.msg === 'route running' && l.route === 'commands-echo'));
    const sent = await api(cloud).call<{ published: boolean }>('POST', '/nodes/edge-1/publish', { topic: 'apps/commands/fan', payload: '{"speed":3}' });
    expect(sent.status).toBe(200);
    const echoed = await waitFor('the publish routed back', async () => (await messages('commands-echo'))[0]);
    expect(echoed).toMatchObject({ topic: 'apps/commands/fan', payload: '{"speed":3}' });
    const refused = await api(cloud).call<{ error: string }>('POST', '/nodes/edge-1/publish', { topic: 'ef/devices/thermo-1/twin/desired', payload: '{}' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/topic.*must be under "apps\/"/);
  });

  it('deleting a route removes it from the node', async () => {
    expect((await api(cloud).call('DELETE', '/routes/commands-echo')).status).toBe(200);
    await waitFor('the route removed on the edge', async () => edge.proc.lines.some((l) => l.msg === 'route removed' && l.route === 'commands-echo'));
  });
});
