import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { deviceTopics } from '../../protocol/index.js';
import { hashPassword } from './broker/deviceCredentials.js';
import { hubTestContext, grantedQos, makeDevice, nextMessage, retainedTopics, waitFor } from '../../test/helpers/devices/deviceHubFixtures.js';

/** DeviceHub across restarts, with mappers, and when devices leave the node. */

const ctx = hubTestContext({ pump: 'pump-secret', mapper: 'mapper-secret' });

const pump = deviceTopics('pump-1');
const asPump = { clientId: 'pump-1', username: 'pump-1', password: 'pump-secret' };

describe('DeviceHub restart', () => {
  it('keeps the reported twin, the retained desired and a persistent session across close + new instance', async () => {
    const first = await ctx.kit.startHub();
    first.hub.setDevices([makeDevice('pump-1', { credentialHash: ctx.hash.pump, desired: { setpoint: 21 }, desiredVersion: 2 })]);
    const session = await ctx.kit.connectClient(first.url, { ...asPump, clean: false });
    await session.client.subscribeAsync([pump.delta, pump.desired], { qos: 1 });
    await nextMessage(session.received, pump.delta);
    await session.client.publishAsync(pump.reported, JSON.stringify({ properties: { setpoint: 18, temperature: 19.5 } }), { qos: 1 });
    await waitFor(() => first.hub.statusSnapshot().devices[0]!.reportedVersion === 1, 'report stored');
    await session.client.endAsync();
    await waitFor(() => first.hub.statusSnapshot().devices[0]!.online === false, 'device offline');
    await ctx.kit.stopHub(first.hub);

    ctx.kit.upstream.length = 0;
    const second = await ctx.kit.startHub();
    second.hub.setDevices([makeDevice('pump-1', { credentialHash: ctx.hash.pump, desired: { setpoint: 21 }, desiredVersion: 2 })]);
    const restored = second.hub.statusSnapshot().devices[0]!;
    expect(restored).toMatchObject({ reported: { setpoint: 18, temperature: 19.5 }, reportedVersion: 1, online: false });
    expect(restored.lastSeen).not.toBeNull();
    // The first sight of a device in a run reports it upstream, so the cloud learns the edge's state.
    expect(ctx.kit.twinReports('pump-1')).toHaveLength(1);
    expect(ctx.kit.twinReports('pump-1')[0]!.twin.reported).toEqual({ setpoint: 18, temperature: 19.5 });

    // The persistent session comes back with its subscriptions and gets the delta without subscribing.
    const back = await ctx.kit.connectClient(second.url, { ...asPump, clean: false });
    expect((await nextMessage(back.received, pump.delta)).json).toEqual({ properties: { setpoint: 21 }, version: 2 });
    // A fresh client sees the retained desired.
    const fresh = await ctx.kit.connectClient(second.url, { ...asPump, clientId: 'pump-1-tool' });
    await fresh.client.subscribeAsync(pump.desired, { qos: 1 });
    const desired = await nextMessage(fresh.received, pump.desired);
    expect(desired).toMatchObject({ json: { properties: { setpoint: 21 }, version: 2 }, retain: true });
  });

  it('announces devices offline that a crashed run left online', async () => {
    const first = await ctx.kit.startHub();
    first.hub.setDevices([makeDevice('pump-1', { credentialHash: ctx.hash.pump })]);
    await ctx.kit.stopHub(first.hub);
    const db = new Database(ctx.kit.dbPath);
    db.prepare('UPDATE device_twins SET online = 1').run();
    db.close();

    const second = await ctx.kit.startHub();
    second.hub.addMapperCredential('virtual-mapper', ctx.hash.mapper, 'virtual');
    second.hub.setDevices([makeDevice('pump-1', { credentialHash: ctx.hash.pump })]);
    expect(second.hub.statusSnapshot().devices[0]!.online).toBe(false);
    expect(ctx.kit.twinReports('pump-1').at(-1)!.online).toBe(false);
    const mapper = await ctx.kit.connectClient(second.url, { clientId: 'mapper', username: 'virtual-mapper', password: 'mapper-secret' });
    await mapper.client.subscribeAsync(pump.status, { qos: 1 });
    expect((await nextMessage(mapper.received, pump.status)).json).toMatchObject({ online: false });
  });

  it('clears retained topics of a device that left the node while the edge was down', async () => {
    const first = await ctx.kit.startHub();
    first.hub.setDevices([makeDevice('pump-1', { desired: { setpoint: 20 }, desiredVersion: 1 }), makeDevice('fan-1', { desired: { mode: 'low' }, desiredVersion: 1 })]);
    await waitFor(() => retainedTopics(ctx.kit.dbPath).length === 2, 'both desired retained');
    await ctx.kit.stopHub(first.hub);

    const second = await ctx.kit.startHub();
    expect(retainedTopics(ctx.kit.dbPath)).toHaveLength(2); // nothing is cleared before the device list is known
    second.hub.setDevices([makeDevice('pump-1', { desired: { setpoint: 20 }, desiredVersion: 1 })]);
    await waitFor(() => retainedTopics(ctx.kit.dbPath).join() === pump.desired, 'fan-1 desired cleared');
  });
});

describe('DeviceHub mappers', () => {
  it('a mapper acts for every device of its protocol and only those', async () => {
    const { hub, url } = await ctx.kit.startHub();
    hub.addMapperCredential('modbus-mapper', ctx.hash.mapper, 'modbus');
    hub.setDevices([
      makeDevice('meter-1', { protocol: 'modbus', desired: { setpoint: 10 }, desiredVersion: 1 }),
      makeDevice('meter-2', { protocol: 'modbus' }),
      makeDevice('pump-1', { credentialHash: ctx.hash.pump, desired: { setpoint: 20 }, desiredVersion: 1 }),
    ]);
    const { client, received } = await ctx.kit.connectClient(url, { clientId: 'modbus-mapper-1', username: 'modbus-mapper', password: 'mapper-secret' });
    expect(await grantedQos(client, 'ef/devices/+/twin/delta')).toBe(1);
    expect(await grantedQos(client, 'ef/devices/+/twin/desired')).toBe(1);
    expect(await grantedQos(client, pump.desired)).toBe(128);
    expect(await grantedQos(client, 'ef/#')).toBe(128);
    await waitFor(() => received.some((m) => m.topic === deviceTopics('meter-1').desired), 'meter-1 desired');
    await client.publishAsync(deviceTopics('meter-2').reported, JSON.stringify({ properties: { temperature: 30 } }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices.find((d) => d.name === 'meter-2')!.reportedVersion === 1, 'meter-2 report');
    // Only its own devices' messages reach it, whatever the wildcard matched.
    expect(received.every((m) => m.topic.startsWith('ef/devices/meter-'))).toBe(true);
    expect(received.filter((m) => m.topic === deviceTopics('meter-1').delta)).toHaveLength(1);
    // The mapper's connection does not mark its devices online.
    expect(hub.statusSnapshot().devices.every((d) => !d.online)).toBe(true);

    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish(pump.reported, JSON.stringify({ properties: { temperature: 1 } }));
    await closed;
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'pump-1')!.reported).toEqual({});
  });

  it('refuses a mapper credential that is not an scrypt hash', async () => {
    const { hub } = await ctx.kit.startHub();
    expect(() => hub.addMapperCredential('m', 'plaintext', 'modbus')).toThrow(/scrypt/);
  });
});

describe('DeviceHub device removal and credential changes', () => {
  it('a removed device loses its retained topics, its twin and its connection', async () => {
    const { hub, url } = await ctx.kit.startHub();
    hub.addMapperCredential('virtual-mapper', ctx.hash.mapper, 'virtual');
    hub.setDevices([
      makeDevice('pump-1', { credentialHash: ctx.hash.pump, desired: { setpoint: 21 }, desiredVersion: 1 }),
      makeDevice('fan-1', { desired: { mode: 'low' }, desiredVersion: 1 }),
    ]);
    const device = await ctx.kit.connectClient(url, asPump);
    await device.client.publishAsync(pump.reported, JSON.stringify({ properties: { temperature: 20 } }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices.find((d) => d.name === 'pump-1')!.reportedVersion === 1, 'report');
    const closed = new Promise<void>((resolve) => device.client.once('close', () => resolve()));

    expect(retainedTopics(ctx.kit.dbPath)).toEqual([deviceTopics('fan-1').desired, pump.status, pump.desired]);
    hub.setDevices([makeDevice('fan-1', { desired: { mode: 'low' }, desiredVersion: 1 })]);
    await closed;
    await waitFor(() => retainedTopics(ctx.kit.dbPath).join() === deviceTopics('fan-1').desired, 'pump-1 retained topics cleared');
    expect(hub.statusSnapshot().devices.map((d) => d.name)).toEqual(['fan-1']);
    expect((await ctx.kit.connectError(url, asPump)).message).toMatch(/Bad username or password/i);

    const mapper = await ctx.kit.connectClient(url, { clientId: 'mapper', username: 'virtual-mapper', password: 'mapper-secret' });
    await mapper.client.subscribeAsync('ef/devices/+/#', { qos: 1 });
    await nextMessage(mapper.received, deviceTopics('fan-1').desired);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(mapper.received.filter((m) => m.topic.startsWith('ef/devices/pump-1/'))).toEqual([]);

    // Added back, it starts from an empty twin.
    hub.setDevices([makeDevice('pump-1', { credentialHash: ctx.hash.pump }), makeDevice('fan-1', { desired: { mode: 'low' }, desiredVersion: 1 })]);
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'pump-1')).toMatchObject({ reported: {}, reportedVersion: 0 });
  });

  it('a device kept out of the list (its stored object unreadable) keeps its twin and retained topics until it is back', async () => {
    const first = await ctx.kit.startHub();
    const fan = makeDevice('fan-1', { desired: { mode: 'low' }, desiredVersion: 1 });
    const pumpDevice = makeDevice('pump-1', { credentialHash: ctx.hash.pump, desired: { setpoint: 21 }, desiredVersion: 1 });
    first.hub.setDevices([pumpDevice, fan]);
    const device = await ctx.kit.connectClient(first.url, asPump);
    await device.client.publishAsync(pump.reported, JSON.stringify({ properties: { temperature: 20 } }), { qos: 1 });
    await device.client.endAsync();
    await ctx.kit.stopHub(first.hub);

    // The next start cannot read pump-1's stored object: its first sync sweeps orphaned retained topics, but not pump-1's.
    const { hub, url } = await ctx.kit.startHub();
    hub.setDevices([fan], new Set(['pump-1']));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(retainedTopics(ctx.kit.dbPath)).toEqual([deviceTopics('fan-1').desired, pump.status, pump.desired]);
    expect(hub.statusSnapshot().devices.map((d) => d.name)).toEqual(['fan-1']);
    expect((await ctx.kit.connectError(url, asPump)).message).toMatch(/Bad username or password/i);

    // The resync brings it back, twin and all.
    hub.setDevices([pumpDevice, fan]);
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'pump-1')).toMatchObject({ reported: { temperature: 20 }, reportedVersion: 1 });
  });

  it('a changed device credential disconnects the device and only the new password works', async () => {
    const { hub, url } = await ctx.kit.startHub();
    hub.setDevices([makeDevice('pump-1', { credentialHash: ctx.hash.pump })]);
    const device = await ctx.kit.connectClient(url, asPump);
    const closed = new Promise<void>((resolve) => device.client.once('close', () => resolve()));
    hub.setDevices([makeDevice('pump-1', { credentialHash: await hashPassword('rotated') })]);
    await closed;
    expect((await ctx.kit.connectError(url, asPump)).message).toMatch(/Bad username or password/i);
    await ctx.kit.connectClient(url, { ...asPump, password: 'rotated' });
    await waitFor(() => hub.statusSnapshot().devices[0]!.online, 'online with the new password');
  });
});
