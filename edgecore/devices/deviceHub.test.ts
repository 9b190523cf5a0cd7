import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../protocol/index.js';
import { hashPassword } from './broker/deviceCredentials.js';
import { HubTestKit, THERMOSTAT_MODEL, grantedQos, makeDevice, nextMessage, waitFor } from '../../test/helpers/devices/deviceHubFixtures.js';

/**
 * DeviceHub against the mqtt npm client: a real aedes broker on 127.0.0.1 with its SQLite
 * file in a temp dir. Restart, mapper and removal cases are in deviceHubLifecycle.test.ts.
 */

let kit: HubTestKit;
let pumpHash: string;
let fanHash: string;
let mapperHash: string;

beforeAll(async () => {
  [pumpHash, fanHash, mapperHash] = await Promise.all([hashPassword('pump-secret'), hashPassword('fan-secret'), hashPassword('mapper-secret')]);
});
beforeEach(() => { kit = new HubTestKit(); });
afterEach(async () => { await kit.cleanup(); });

const pump = deviceTopics('pump-1');
const fan = deviceTopics('fan-1');

async function startWithDevices(options: Parameters<HubTestKit['startHub']>[0] = {}) {
  const started = await kit.startHub(options);
  started.hub.setDevices([
    makeDevice('pump-1', { credentialHash: pumpHash, desired: { setpoint: 21 }, desiredVersion: 3, generation: 4 }),
    makeDevice('fan-1', { credentialHash: fanHash }),
  ]);
  return started;
}

const asPump = { clientId: 'pump-1', username: 'pump-1', password: 'pump-secret' };

describe('DeviceHub twin reported', () => {
  it('merges reports, persists them and sends the whole reported section upstream', async () => {
    const { hub, url } = await startWithDevices();
    const { client } = await kit.connectClient(url, asPump);
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { temperature: 20.5, mode: 'eco' } }), { qos: 1 });
    await waitFor(() => kit.twinReports('pump-1').some((b) => b.twin.version === 1), 'first report upstream');
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { mode: null, count: 7 } }), { qos: 1 });
    await waitFor(() => kit.twinReports('pump-1').some((b) => b.twin.version === 2), 'second report upstream');

    const last = kit.twinReports('pump-1').at(-1)!;
    expect(last.device).toBe('pump-1');
    expect(last.twin.reported).toEqual({ temperature: 20.5, count: 7 });
    expect(Object.keys(last.twin.metadata).sort()).toEqual(['count', 'temperature']);
    expect(last.online).toBe(true);
    expect(last.lastSeen).not.toBeNull();
    expect(last.observedGeneration).toBe(4);

    const snapshot = hub.statusSnapshot();
    expect(snapshot.devices.find((d) => d.name === 'pump-1')).toMatchObject({
      online: true, reported: { temperature: 20.5, count: 7 }, desiredVersion: 3, reportedVersion: 2,
    });
    expect(snapshot.messages.received).toBeGreaterThanOrEqual(2);
    expect(snapshot.clients).toBe(1);
  });

  it('a report that changes nothing does not bump the version or go upstream again', async () => {
    const { hub, url } = await startWithDevices();
    const { client } = await kit.connectClient(url, asPump);
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { temperature: 20 } }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices[1]!.reportedVersion === 1, 'version 1');
    const reportsBefore = kit.twinReports('pump-1').length;
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { temperature: 20 } }), { qos: 1 });
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { count: 1 } }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices[1]!.reportedVersion === 2, 'version 2');
    // The change goes upstream once (within the hub's twin upstream interval); the repeat never does.
    await waitFor(() => kit.twinReports('pump-1').length > reportsBefore, 'the change upstream');
    const after = kit.twinReports('pump-1').slice(reportsBefore);
    expect(after.map((b) => [b.twin.version, b.twin.reported])).toEqual([[2, { temperature: 20, count: 1 }]]);
  });

  it('refuses bad reports on the errors topic and changes nothing', async () => {
    const { hub, url } = await startWithDevices();
    const { client, received } = await kit.connectClient(url, asPump);
    await client.subscribeAsync(pump.errors, { qos: 0 });
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { temperature: 20 } }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices[1]!.reportedVersion === 1, 'a good report');
    const reportsBefore = kit.twinReports('pump-1').length;

    const cases: { payload: string; error: RegExp; property?: string }[] = [
      { payload: '{"properties": {"temperature": 21', error: /not valid JSON/ },
      { payload: JSON.stringify({ props: { temperature: 1 } }), error: /properties|Unrecognized key/ },
      { payload: JSON.stringify({ properties: { humidity: 40 } }), error: /unknown property "humidity"/, property: 'humidity' },
      { payload: JSON.stringify({ properties: { temperature: 'warm' } }), error: /must be a number/, property: 'temperature' },
      { payload: JSON.stringify({ properties: { count: 1.5 } }), error: /must be an integer/, property: 'count' },
      { payload: JSON.stringify({ properties: { temperature: 500 } }), error: /≤ 125/, property: 'temperature' },
      { payload: JSON.stringify({ properties: { temperature: 22, enabled: [true] } }), error: /must be a number, a string, true\/false or null/, property: 'enabled' },
    ];
    for (const [index, c] of cases.entries()) {
      const from = received.length;
      await client.publishAsync(pump.reported, c.payload, { qos: 1 });
      const message = await nextMessage(received, pump.errors, from);
      const body = message.json as { error: string; property?: string; topic: string; payload?: string };
      expect(body.error, `case ${index}`).toMatch(c.error);
      expect(body.property, `case ${index}`).toBe(c.property);
      expect(body.topic).toBe(pump.reported);
      expect(body.payload).toBe(c.payload.slice(0, 200));
      expect(message.retain).toBe(false);
    }
    expect(hub.statusSnapshot().devices[1]).toMatchObject({ reported: { temperature: 20 }, reportedVersion: 1 });
    expect(kit.twinReports('pump-1').length).toBe(reportsBefore);
    expect(hub.statusSnapshot().messages.refused).toBe(cases.length);
  });

  it('a refused message reaches no subscriber, live or queued for a persistent session; an accepted one is routed as usual', async () => {
    const { hub, url } = await startWithDevices();
    hub.addMapperCredential('virtual-mapper', mapperHash, 'virtual');
    const asWatcher = { clientId: 'watcher', username: 'virtual-mapper', password: 'mapper-secret', clean: false };
    // A persistent session subscribed to every report of its devices, then gone: what is routed
    // to it waits in the broker's tables until it comes back.
    const gone = await kit.connectClient(url, asWatcher);
    await gone.client.subscribeAsync('ef/devices/+/twin/reported', { qos: 1 });
    await gone.client.endAsync();

    const { client, received } = await kit.connectClient(url, asPump);
    await client.subscribeAsync('ef/devices/pump-1/#', { qos: 1 }); // its own reports come back (MQTT 3.1.1 has no no-local)
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { temperature: 500 } }), { qos: 1 });
    expect((await nextMessage(received, pump.errors)).json).toMatchObject({ property: 'temperature' });
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { temperature: 20 } }), { qos: 1 });
    await nextMessage(received, pump.reported);
    const watcher = await kit.connectClient(url, asWatcher);
    await nextMessage(watcher.received, pump.reported);
    await new Promise((resolve) => setTimeout(resolve, 300)); // room for a wrong delivery to show up

    const reports = (r: typeof received) => r.filter((m) => m.topic === pump.reported).map((m) => m.json);
    expect(reports(received)).toEqual([{ properties: { temperature: 20 } }]);
    expect(reports(watcher.received)).toEqual([{ properties: { temperature: 20 } }]);
    expect(hub.statusSnapshot().messages.refused).toBe(1);
  });

  it('accepts a reported ReadOnly property (ReadOnly only limits desired writes)', async () => {
    const { hub, url } = await startWithDevices();
    const { client } = await kit.connectClient(url, asPump);
    expect(THERMOSTAT_MODEL.properties.find((p) => p.name === 'temperature')?.accessMode).toBe('ReadOnly');
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { temperature: -3.5 } }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices[1]!.reported['temperature'] === -3.5, 'the ReadOnly value in the twin');
  });

  it('answers twin/get with the whole twin', async () => {
    const { url } = await startWithDevices();
    const { client, received } = await kit.connectClient(url, asPump);
    await client.subscribeAsync(pump.getResult, { qos: 1 });
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { setpoint: 19, mode: 'eco' } }), { qos: 1 });
    await client.publishAsync(pump.get, '', { qos: 1 });
    const result = await nextMessage(received, pump.getResult);
    expect(result.json).toMatchObject({
      desired: { setpoint: 21 }, reported: { setpoint: 19, mode: 'eco' }, delta: { setpoint: 21 },
      version: { desired: 3, reported: 1 }, metadata: { desired: {}, reported: { setpoint: {}, mode: {} } },
    });
  });
});

describe('DeviceHub desired and delta', () => {
  it('a subscribing device gets the retained desired and the delta', async () => {
    const { url } = await startWithDevices();
    const { client, received } = await kit.connectClient(url, asPump);
    await client.subscribeAsync(`ef/devices/pump-1/twin/+`, { qos: 1 });
    const desired = await nextMessage(received, pump.desired);
    expect(desired.json).toEqual({ properties: { setpoint: 21 }, version: 3 });
    expect(desired.retain).toBe(true);
    expect((await nextMessage(received, pump.delta)).json).toEqual({ properties: { setpoint: 21 }, version: 3 });
  });

  it('a desired change reaches a connected device; reporting the value clears the delta', async () => {
    const { hub, url } = await startWithDevices();
    const { client, received } = await kit.connectClient(url, asPump);
    await client.subscribeAsync([pump.desired, pump.delta], { qos: 1 });
    await nextMessage(received, pump.delta);
    await client.publishAsync(pump.reported, JSON.stringify({ properties: { setpoint: 21 } }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices[1]!.reportedVersion === 1, 'setpoint reported');

    const from = received.length;
    hub.setDevices([
      makeDevice('pump-1', { credentialHash: pumpHash, desired: { setpoint: 21, mode: 'boost' }, desiredVersion: 4, generation: 5 }),
      makeDevice('fan-1', { credentialHash: fanHash }),
    ]);
    expect((await nextMessage(received, pump.desired, from)).json).toEqual({ properties: { setpoint: 21, mode: 'boost' }, version: 4 });
    expect((await nextMessage(received, pump.delta, from)).json).toEqual({ properties: { mode: 'boost' }, version: 4 });
    await waitFor(() => kit.twinReports('pump-1').some((b) => b.observedGeneration === 5), 'the new generation reported');

    // The same devices again publish nothing new.
    const quiet = received.length;
    hub.setDevices([
      makeDevice('pump-1', { credentialHash: pumpHash, desired: { mode: 'boost', setpoint: 21 }, desiredVersion: 4, generation: 5 }),
      makeDevice('fan-1', { credentialHash: fanHash }),
    ]);
    await client.publishAsync(pump.get, '', { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received.slice(quiet).filter((m) => m.topic === pump.desired)).toEqual([]);
  });
});

describe('DeviceHub authentication and access', () => {
  it('refuses a wrong password, an unknown user and anonymous clients', async () => {
    const { url } = await startWithDevices();
    expect((await kit.connectError(url, { ...asPump, password: 'wrong' })).message).toMatch(/Bad username or password/i);
    expect((await kit.connectError(url, { clientId: 'x', username: 'nobody', password: 'pump-secret' })).message).toMatch(/Bad username or password/i);
    expect((await kit.connectError(url, { clientId: 'anon' })).message).toMatch(/Not authorized/i);
    // A device name as client id is reserved for that device.
    expect((await kit.connectError(url, { clientId: 'pump-1', username: 'fan-1', password: 'fan-secret' })).message).toMatch(/Identifier rejected/i);
  });

  it('with allowAnonymous, a client without credentials acts as the device named by its client id', async () => {
    const { hub, url } = await startWithDevices({ allowAnonymous: true });
    const { client } = await kit.connectClient(url, { clientId: 'fan-1' });
    await client.publishAsync(fan.reported, JSON.stringify({ properties: { mode: 'low' } }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices[0]!.reported['mode'] === 'low', 'anonymous report');
    expect(hub.statusSnapshot().devices[0]!.online).toBe(true);
  });

  it('device A can neither subscribe to nor publish on device B topics', async () => {
    const warnings: { obj: Record<string, unknown>; msg: string | undefined }[] = [];
    const { hub, url } = await startWithDevices({ logger: { info: () => {}, warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }) } });
    const { client } = await kit.connectClient(url, asPump);
    const filters = [fan.desired, 'ef/devices/+/twin/desired', 'ef/devices/#', '#', '$SYS/#', 'ef/devices/pump-1/#'];
    const granted: number[] = [];
    for (const filter of filters) granted.push(await grantedQos(client, filter));
    expect(granted).toEqual([128, 128, 128, 128, 128, 1]);

    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish(fan.reported, JSON.stringify({ properties: { mode: 'hacked' } }), { qos: 0 });
    await closed;
    expect(hub.statusSnapshot().devices[0]!.reported).toEqual({});
    expect(hub.statusSnapshot().messages.refused).toBe(1);
    // The log lines name the device that tried, and the topic.
    expect(warnings).toContainEqual({ obj: { clientId: expect.any(String), device: 'pump-1', topic: fan.desired }, msg: 'MQTT subscription refused' });
    expect(warnings).toContainEqual({ obj: { clientId: expect.any(String), device: 'pump-1', topic: fan.reported }, msg: 'MQTT publish refused' });
  });

  it('a device may not publish its own desired or status topics', async () => {
    const { hub, url } = await startWithDevices();
    const { client } = await kit.connectClient(url, asPump);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish(pump.desired, JSON.stringify({ properties: { setpoint: 30 }, version: 99 }), { qos: 0, retain: true });
    await closed;
    const watcher = await kit.connectClient(url, { ...asPump, clientId: 'pump-1-watcher' });
    await watcher.client.subscribeAsync(pump.desired, { qos: 1 });
    expect((await nextMessage(watcher.received, pump.desired)).json).toEqual({ properties: { setpoint: 21 }, version: 3 });
    expect(hub.statusSnapshot().messages.refused).toBe(1);
  });
});

describe('DeviceHub status and telemetry', () => {
  it('publishes retained online/offline status and reports it upstream', async () => {
    const { hub, url } = await startWithDevices();
    hub.addMapperCredential('virtual-mapper', mapperHash, 'virtual');
    const watcher = await kit.connectClient(url, { ...asPump, clientId: 'pump-1-watcher' });
    await watcher.client.subscribeAsync(pump.status, { qos: 1 });
    expect((await nextMessage(watcher.received, pump.status)).json).toMatchObject({ online: true });
    expect(kit.twinReports('pump-1').at(-1)!.online).toBe(true);

    // A second connection of the same device, with a will on its status topic.
    const device = await kit.connectClient(url, {
      ...asPump, will: { topic: pump.status, payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
    });
    device.client.stream.destroy(); // unclean: the will fires, but the watcher still holds the device online
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(hub.statusSnapshot().devices[1]!.online).toBe(true);
    expect(watcher.received.filter((m) => m.topic === pump.status)).toHaveLength(1);

    await watcher.client.endAsync();
    await waitFor(() => hub.statusSnapshot().devices[1]!.online === false, 'offline');
    expect(kit.twinReports('pump-1').at(-1)!.online).toBe(false);
    // A mapper connection does not make a device online.
    const mapper = await kit.connectClient(url, { clientId: 'mapper', username: 'virtual-mapper', password: 'mapper-secret' });
    await mapper.client.subscribeAsync('ef/devices/+/status', { qos: 1 });
    const status = await nextMessage(mapper.received, pump.status);
    expect(status.json).toMatchObject({ online: false });
    expect(status.retain).toBe(true);
    expect(Number.isNaN(Date.parse((status.json as { at: string }).at))).toBe(false);
    expect(hub.statusSnapshot().devices.map((d) => d.online)).toEqual([false, false]);
  });

  it('batches telemetry upstream and keeps it out of the twin', async () => {
    const { hub, url } = await startWithDevices({ telemetryBatch: { maxSamples: 3, maxDelayMs: 300 } });
    const { client, received } = await kit.connectClient(url, asPump);
    await client.subscribeAsync(pump.errors, { qos: 0 });
    for (const temperature of [20, 21, 22, 23]) {
      await client.publishAsync(pump.telemetry, JSON.stringify({ values: { temperature } }), { qos: 1 });
    }
    await client.publishAsync(pump.telemetry, JSON.stringify({
      samples: [{ t: '2024-05-01T10:00:00Z', values: { temperature: 24, count: 1 } }, { values: { enabled: true } }],
    }), { qos: 1 });
    await client.publishAsync(pump.telemetry, JSON.stringify({ values: { temperature: 'hot' } }), { qos: 1 });

    await waitFor(() => kit.telemetry('pump-1').flatMap((b) => b.samples).length === 6, 'six samples upstream');
    const batches = kit.telemetry('pump-1');
    expect(batches[0]!.samples.map((s) => s.values['temperature'])).toEqual([20, 21, 22]);
    expect(batches.every((b) => b.samples.length <= 3 && b.device === 'pump-1')).toBe(true);
    const samples = batches.flatMap((b) => b.samples);
    expect(samples[4]).toEqual({ t: '2024-05-01T10:00:00Z', values: { temperature: 24, count: 1 } });
    expect(Number.isNaN(Date.parse(samples[0]!.t))).toBe(false);
    expect((await nextMessage(received, pump.errors)).json).toMatchObject({ property: 'temperature', topic: pump.telemetry });
    expect(hub.statusSnapshot().devices[1]!.reported).toEqual({});
  });
});
