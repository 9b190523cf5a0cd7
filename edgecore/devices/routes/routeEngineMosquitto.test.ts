import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { deviceTopics, NodeRouteSchema, type NodeRoute } from '../../../protocol/index.js';
import { hashPassword } from '../broker/deviceCredentials.js';
import type { DeviceHub } from '../deviceHub.js';
import { HubTestKit, makeDevice, waitFor } from '../../../test/helpers/devices/deviceHubFixtures.js';
import { connectArgs, killClients, mosquittoClientsAvailable, runClient } from '../../../test/helpers/devices/mosquittoClients.js';
import { makeOperatorBroker, makeServerTls, operatorBrokerAvailable, operatorClientArgs, type OperatorBroker } from '../../../test/helpers/routes/operatorBroker.js';
import { RouteEngine } from './routeEngine.js';
import { RouteQueue } from './routeQueue.js';

/**
 * Routes from the edge broker to an operator's broker: Debian's mosquitto (/usr/sbin/mosquitto,
 * TLS with a CA made here, a mosquitto_passwd password file), devices publishing with
 * mosquitto_pub, the operator reading with mosquitto_sub. Nothing here is a stand-in.
 */

const skip = !mosquittoClientsAvailable || !operatorBrokerAvailable;
const itReal = it.skipIf(skip);
if (skip) console.warn('routeEngineMosquitto.test.ts skipped: needs /usr/sbin/mosquitto, mosquitto_passwd, mosquitto_pub/sub and openssl');

let kit: HubTestKit;
let pumpHash: string;
const engines: RouteEngine[] = [];
const queues: RouteQueue[] = [];
const brokers: OperatorBroker[] = [];
const logLines: string[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => { logLines.push(line); } });

/** A CA that did not sign the broker's certificate. */
let strangerCa = '';
beforeAll(async () => {
  pumpHash = await hashPassword('pump-secret');
  if (skip) return;
  const dir = mkdtempSync(join(tmpdir(), 'route-stranger-ca-'));
  strangerCa = makeServerTls(dir, 'stranger').caPem;
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => { kit = new HubTestKit(); logLines.length = 0; });
afterEach(async () => {
  await killClients();
  for (const engine of engines.splice(0)) await engine.close();
  for (const queue of queues.splice(0)) queue.close();
  for (const broker of brokers.splice(0)) await broker.stop();
  await kit.cleanup();
});

const pump = deviceTopics('pump-1');

function route(name: string, destination: NodeRoute['spec']['destination'], options: { password?: string; limits?: Partial<NodeRoute['spec']['limits']>; topics?: string[] } = {}): NodeRoute {
  return NodeRouteSchema.parse({
    kind: 'NodeRoute', metadata: { name: `${name}.edge-1` },
    spec: {
      nodeName: 'edge-1', route: name, source: { topics: options.topics ?? ['ef/devices/+/telemetry'] }, destination,
      limits: { maxMessagesPerSecond: 1000, maxMessageBytes: 65536, maxQueuedMessages: 10_000, maxQueuedBytes: 1 << 26, ...options.limits },
      resolved: { ...(options.password !== undefined ? { password: options.password } : {}), missing: [] },
    },
  });
}

const toBroker = (broker: OperatorBroker, extra: Partial<Extract<NodeRoute['spec']['destination'], { type: 'mqtt' }>> = {}) => ({
  type: 'mqtt' as const, url: broker.url, allowPlaintext: false, topicPrefix: 'site-7/', username: broker.username, ca: broker.caPem, ...extra,
});

async function startEdge(): Promise<{ hub: DeviceHub; port: number; engine: RouteEngine; queue: RouteQueue }> {
  const { hub, port } = await kit.startHub();
  hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash })]);
  const queue = new RouteQueue(join(kit.dir, 'routes.db'));
  queues.push(queue);
  const engine = new RouteEngine({ node: 'edge-1', queue, bus: hub.routeBus()!, uplink: { send: () => false, up: () => false }, log });
  engines.push(engine);
  return { hub, port, engine, queue };
}

async function publishTelemetry(port: number, values: Record<string, number | string>): Promise<void> {
  const sent = await runClient('mosquitto_pub', [...connectArgs(port, 'pump-1', 'pump-1', 'pump-secret'), '-q', '1', '-t', pump.telemetry, '-m', JSON.stringify({ values })]).done;
  expect(sent, sent.stderr).toMatchObject({ code: 0 });
}

/**
 * The operator's reader: a persistent session (registered first with -E, so everything after
 * that is kept for it, across a broker restart too), then mosquitto_sub printing what arrives.
 */
async function operatorReader(broker: OperatorBroker, id: string): Promise<{ counts: () => number[] }> {
  const args = [...operatorClientArgs(broker, id), '-c', '-q', '1', '-t', 'site-7/#'];
  const registered = await runClient('mosquitto_sub', [...args, '-E']).done;
  expect(registered.code, registered.stderr).toBe(0);
  const reader = runClient('mosquitto_sub', [...args, '-v'], 120_000);
  let out = '';
  reader.child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  // mosquitto_sub exits if its first connect fails, and says nothing once connected: a marker it
  // prints tells it is in (a test may stop the broker next).
  await vi.waitFor(async () => {
    const marker = await runClient('mosquitto_pub', [...operatorClientArgs(broker, `${id}-marker`), '-q', '1', '-t', 'site-7/marker', '-m', 'in']).done;
    expect(marker.code, marker.stderr).toBe(0);
    expect(out).toContain('site-7/marker in');
  }, { timeout: 20_000, interval: 200 });
  return {
    counts: () => out.split('\n').filter((line) => line.startsWith(`site-7/${pump.telemetry} `))
      .map((line) => (JSON.parse(line.slice(line.indexOf(' ') + 1)) as { values: { count: number } }).values.count),
  };
}

const counters = (engine: RouteEngine, name: string) => engine.counters().find((c) => c.route === name)!;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('a routed message is queued before its publisher hears back', () => {
  it.skipIf(!mosquittoClientsAvailable)('the hub holds a QoS 1 PUBACK until the routes have the message (aedes acks before it delivers to subscribers)', async () => {
    const { hub, port } = await startEdge();
    const held: (() => void)[] = [];
    hub.routeBus()!.setGate((packet, done) => { if (packet.topic === pump.telemetry) held.push(done); else done(); });
    const sent = runClient('mosquitto_pub', [...connectArgs(port, 'pump-1', 'pump-1', 'pump-secret'), '-q', '1', '-t', pump.telemetry, '-m', '{"values":{"count":1}}']);
    await waitFor(() => held.length === 1, 'the message at the routes');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(sent.child.exitCode, 'mosquitto_pub got its PUBACK while the routes still held the message').toBeNull();
    held[0]!();
    expect((await sent.done).code).toBe(0);
  });
});

describe('routes to an operator MQTT broker (mosquitto, TLS, password)', () => {
  itReal('delivers device telemetry under the topic prefix, in order, and counts it', async () => {
    const broker = await makeOperatorBroker(kit.dir);
    brokers.push(broker);
    const reader = await operatorReader(broker, 'operator-1');
    const { port, engine } = await startEdge();
    await engine.setRoutes([route('to-ops', toBroker(broker), { password: broker.password })]);
    await waitFor(() => counters(engine, 'to-ops').connected, 'the route connected to mosquitto');
    for (const count of range(1, 5)) await publishTelemetry(port, { count });
    await waitFor(() => reader.counts().length === 5, 'five messages at the operator');
    expect(reader.counts()).toEqual(range(1, 5));
    await waitFor(() => counters(engine, 'to-ops').forwarded === 5, 'five forwarded');
    expect(counters(engine, 'to-ops')).toMatchObject({ matched: 5, queued: 5, forwarded: 5, queueDepth: 0, dropped: { queueFull: 0, oversized: 0 }, lastError: null });
  });

  itReal('survives the broker\'s restart: what queued meanwhile all arrives, in order, none twice', async () => {
    const broker = await makeOperatorBroker(kit.dir);
    brokers.push(broker);
    const reader = await operatorReader(broker, 'operator-2');
    const { port, engine } = await startEdge();
    await engine.setRoutes([route('to-ops', toBroker(broker), { password: broker.password })]);
    await publishTelemetry(port, { count: 1 });
    await waitFor(() => reader.counts().length === 1, 'the first message');
    await broker.stop();
    await waitFor(() => !counters(engine, 'to-ops').connected, 'the route saw the broker go');
    for (const count of range(2, 21)) await publishTelemetry(port, { count });
    await waitFor(() => counters(engine, 'to-ops').queueDepth === 20, 'twenty queued on the edge');
    expect(counters(engine, 'to-ops').lastError).toMatch(/127\.0\.0\.1/);
    await broker.start();
    await waitFor(() => reader.counts().length >= 21 && counters(engine, 'to-ops').queueDepth === 0, 'the backlog delivered');
    expect(reader.counts()).toEqual(range(1, 21));
    expect(counters(engine, 'to-ops')).toMatchObject({ forwarded: 21, dropped: { queueFull: 0, oversized: 0 } });
  });

  itReal('counts drops when its queue bound is hit (the oldest go) and delivers the newest after the outage', async () => {
    const broker = await makeOperatorBroker(kit.dir);
    brokers.push(broker);
    const reader = await operatorReader(broker, 'operator-3');
    await broker.stop();
    const { port, engine } = await startEdge();
    await engine.setRoutes([route('to-ops', toBroker(broker), { password: broker.password, limits: { maxQueuedMessages: 5 } })]);
    for (const count of range(1, 8)) await publishTelemetry(port, { count });
    await waitFor(() => counters(engine, 'to-ops').matched === 8, 'eight matched');
    expect(counters(engine, 'to-ops')).toMatchObject({ queued: 8, queueDepth: 5, dropped: { queueFull: 3, oversized: 0 } });
    expect(logLines.some((l) => l.includes('queue full, dropped the oldest'))).toBe(true);
    await broker.start();
    await waitFor(() => reader.counts().length >= 5 && counters(engine, 'to-ops').queueDepth === 0, 'the kept five delivered');
    expect(reader.counts()).toEqual(range(4, 8));
  });

  itReal('refuses an oversized message (counted, named in the log) and forwards the rest', async () => {
    const broker = await makeOperatorBroker(kit.dir);
    brokers.push(broker);
    const reader = await operatorReader(broker, 'operator-4');
    const { port, engine } = await startEdge();
    await engine.setRoutes([route('to-ops', toBroker(broker), { password: broker.password, limits: { maxMessageBytes: 100 } })]);
    await publishTelemetry(port, { count: 1 });
    await publishTelemetry(port, { count: 2, mode: 'x'.repeat(200) });
    await publishTelemetry(port, { count: 3 });
    await waitFor(() => reader.counts().length === 2, 'the two small ones');
    expect(reader.counts()).toEqual([1, 3]);
    expect(counters(engine, 'to-ops')).toMatchObject({ matched: 3, queued: 2, dropped: { oversized: 1, queueFull: 0 } });
    expect(logLines.some((l) => l.includes(`message on ${pump.telemetry} refused`) && l.includes('over maxMessageBytes (100)'))).toBe(true);
  });

  itReal('an unreachable destination, a wrong password and an unknown CA show as the route\'s error; the other route and the broker go on', async () => {
    const broker = await makeOperatorBroker(kit.dir);
    brokers.push(broker);
    const reader = await operatorReader(broker, 'operator-5');
    const { port, engine } = await startEdge();
    const nowhere = `mqtts://127.0.0.1:${broker.port === 1 ? 2 : 1}`;
    await engine.setRoutes([
      route('good', toBroker(broker), { password: broker.password }),
      route('nowhere', toBroker(broker, { url: nowhere }), { password: broker.password }),
      route('bad-password', toBroker(broker, { clientId: 'bad-password' }), { password: 'wrong' }),
      route('bad-ca', toBroker(broker, { ca: strangerCa, clientId: 'bad-ca' }), { password: broker.password }),
    ]);
    for (const count of range(1, 3)) await publishTelemetry(port, { count });
    await waitFor(() => reader.counts().length === 3, 'the good route delivered');
    expect(reader.counts()).toEqual([1, 2, 3]);
    await waitFor(() => ['nowhere', 'bad-password', 'bad-ca'].every((n) => counters(engine, n).lastError !== null), 'the errors shown');
    expect(counters(engine, 'nowhere')).toMatchObject({ connected: false, queueDepth: 3, lastError: expect.stringMatching(/ECONNREFUSED/) });
    expect(counters(engine, 'bad-password')).toMatchObject({ connected: false, queueDepth: 3, lastError: expect.stringMatching(/Bad username or password|Not authorized/i) });
    expect(counters(engine, 'bad-ca')).toMatchObject({ connected: false, queueDepth: 3, lastError: expect.stringMatching(/certificate/i) });
    // The edge broker still takes device messages.
    await publishTelemetry(port, { count: 4 });
    await waitFor(() => reader.counts().length === 4, 'the fourth through the good route');
  });

  itReal('what is queued survives an edgecore restart and is delivered by the next run', async () => {
    const broker = await makeOperatorBroker(kit.dir);
    brokers.push(broker);
    const reader = await operatorReader(broker, 'operator-6');
    await broker.stop();
    const first = await startEdge();
    await first.engine.setRoutes([route('to-ops', toBroker(broker), { password: broker.password })]);
    for (const count of range(1, 4)) await publishTelemetry(first.port, { count });
    await waitFor(() => counters(first.engine, 'to-ops').queueDepth === 4, 'four queued');
    await first.engine.close();
    engines.splice(engines.indexOf(first.engine), 1);
    first.queue.close();
    queues.splice(queues.indexOf(first.queue), 1);
    await kit.stopHub(first.hub);

    await broker.start();
    const second = await startEdge();
    await second.engine.setRoutes([route('to-ops', toBroker(broker), { password: broker.password })]);
    await waitFor(() => reader.counts().length >= 4, 'the four from the previous run');
    expect(reader.counts()).toEqual(range(1, 4));
    // The operator's reader may see the last message before the route has its PUBACK and counts it.
    await waitFor(() => counters(second.engine, 'to-ops').forwarded === 4, 'four counted as forwarded');
    expect(counters(second.engine, 'to-ops')).toMatchObject({ matched: 4, queued: 4, forwarded: 4, queueDepth: 0 });
  });
});
