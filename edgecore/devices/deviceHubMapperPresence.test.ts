import { describe, expect, it } from 'vitest';
import { deviceTopics } from '../../protocol/index.js';
import { hubTestContext, makeDevice, nextMessage, waitFor, type Received } from '../../test/helpers/devices/deviceHubFixtures.js';

/**
 * A device served by a mapper (Modbus, OPC UA…) never connects to the broker itself: it is
 * online while its mapper says it reaches it (`ef/devices/<id>/mapper/state`). Real aedes hub,
 * real mqtt.js clients.
 */

const ctx = hubTestContext({ pump: 'pump-secret', mapper: 'mapper-secret' });

const meter1 = deviceTopics('meter-1');
const meter2 = deviceTopics('meter-2');
const asMapper = { clientId: 'mapper-modbus-edge-1', username: 'modbus-mapper', password: 'mapper-secret' };

async function startHub() {
  const started = await ctx.kit.startHub();
  started.hub.addMapperCredential('modbus-mapper', ctx.hash.mapper, 'modbus');
  started.hub.setDevices([
    makeDevice('meter-1', { protocol: 'modbus' }),
    makeDevice('meter-2', { protocol: 'modbus' }),
    makeDevice('pump-1', { credentialHash: ctx.hash.pump }),
  ]);
  return started;
}

const statuses = (received: Received[], topic: string) => received.filter((m) => m.topic === topic).map((m) => (m.json as { online: boolean }).online);

describe('DeviceHub presence from mappers', () => {
  it('a device is online while its mapper says it reaches it: in the twin, upstream and on the retained status', async () => {
    const { hub, url } = await startHub();
    const online = (name: string) => hub.statusSnapshot().devices.find((d) => d.name === name)!.online;
    const watcher = await ctx.kit.connectClient(url, { ...asMapper, clientId: 'watcher' });
    await watcher.client.subscribeAsync([meter1.status, meter2.status], { qos: 1 });
    const mapper = await ctx.kit.connectClient(url, asMapper);
    // Connecting alone says nothing about the devices behind the mapper.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(online('meter-1')).toBe(false);

    await mapper.client.publishAsync(meter1.mapperState, JSON.stringify({ reachable: true }), { qos: 1 });
    await waitFor(() => online('meter-1'), 'meter-1 online');
    await waitFor(() => ctx.kit.twinReports('meter-1').at(-1)?.online === true, 'online upstream');
    await waitFor(() => statuses(watcher.received, meter1.status).at(-1) === true, 'retained status online');
    expect(online('meter-2')).toBe(false);

    // Saying it again changes nothing; losing the device takes it offline, with the reason logged.
    await mapper.client.publishAsync(meter1.mapperState, JSON.stringify({ reachable: true }), { qos: 1 });
    await mapper.client.publishAsync(meter1.mapperState, JSON.stringify({ reachable: false, error: 'connect ECONNREFUSED 127.0.0.1:502' }), { qos: 1 });
    await waitFor(() => !online('meter-1'), 'meter-1 offline');
    // Why, for the status page and `edgectl local status`, while it stays offline, and upstream for the cloud.
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'meter-1')!.mapperError).toBe('connect ECONNREFUSED 127.0.0.1:502');
    await waitFor(() => ctx.kit.twinReports('meter-1').at(-1)?.offlineReason === 'connect ECONNREFUSED 127.0.0.1:502', 'offline reason upstream');

    // A device the mapper never reached: no presence change, but its reason goes upstream all the same.
    await mapper.client.publishAsync(meter2.mapperState, JSON.stringify({ reachable: false, error: 'timeout after 2000 ms' }), { qos: 1 });
    await waitFor(() => ctx.kit.twinReports('meter-2').at(-1)?.offlineReason === 'timeout after 2000 ms', 'meter-2 reason upstream');
    expect(online('meter-2')).toBe(false);
    await waitFor(() => statuses(watcher.received, meter1.status).at(-1) === false, 'retained status offline');
    expect(statuses(watcher.received, meter1.status).filter((s) => s)).toHaveLength(1);

    // When the mapper's connection goes, so does its word for every device.
    await mapper.client.publishAsync(meter1.mapperState, JSON.stringify({ reachable: true }), { qos: 1 });
    await mapper.client.publishAsync(meter2.mapperState, JSON.stringify({ reachable: true }), { qos: 1 });
    await waitFor(() => online('meter-1') && online('meter-2'), 'both online');
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'meter-1')!.mapperError).toBeUndefined();
    await waitFor(() => ctx.kit.twinReports('meter-1').at(-1)?.online === true, 'online upstream again');
    expect(ctx.kit.twinReports('meter-1').at(-1)).not.toHaveProperty('offlineReason');
    await mapper.client.endAsync();
    await waitFor(() => !online('meter-1') && !online('meter-2'), 'both offline with the mapper gone');
    await waitFor(() => ctx.kit.twinReports('meter-2').at(-1)?.online === false, 'offline upstream');

    // A reason goes with the mapper that gave it: nobody says why any more.
    const again = await ctx.kit.connectClient(url, asMapper);
    await again.client.publishAsync(meter1.mapperState, JSON.stringify({ reachable: false, error: 'timeout' }), { qos: 1 });
    await waitFor(() => ctx.kit.twinReports('meter-1').at(-1)?.offlineReason === 'timeout', 'reason upstream');
    await again.client.endAsync();
    await waitFor(() => ctx.kit.twinReports('meter-1').at(-1)?.offlineReason === undefined, 'reason taken back upstream');
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'meter-1')!.mapperError).toBeUndefined();
  });

  it('a bad state is answered on errors and changes nothing; a device may not speak for itself there, nor a mapper for another protocol', async () => {
    const { hub, url } = await startHub();
    const mapper = await ctx.kit.connectClient(url, asMapper);
    await mapper.client.subscribeAsync(meter1.errors, { qos: 0 });
    await mapper.client.publishAsync(meter1.mapperState, JSON.stringify({ reachable: 'yes' }), { qos: 1 });
    const refusal = (await nextMessage(mapper.received, meter1.errors)).json as { error: string; topic: string };
    expect(refusal.error).toMatch(/^reachable: /);
    expect(refusal.topic).toBe(meter1.mapperState);
    await mapper.client.publishAsync(meter1.mapperState, '{"reachable": true, "extra": 1}', { qos: 1 });
    await nextMessage(mapper.received, meter1.errors, 1);
    expect(hub.statusSnapshot().devices.find((d) => d.name === 'meter-1')!.online).toBe(false);

    const pump = await ctx.kit.connectClient(url, { clientId: 'pump-1', username: 'pump-1', password: 'pump-secret' });
    await waitFor(() => hub.statusSnapshot().devices.find((d) => d.name === 'pump-1')!.online, 'pump online by connecting');
    const pumpClosed = new Promise<void>((resolve) => pump.client.once('close', () => resolve()));
    pump.client.publish(deviceTopics('pump-1').mapperState, JSON.stringify({ reachable: true }), { qos: 1 });
    await pumpClosed;

    const mapperClosed = new Promise<void>((resolve) => mapper.client.once('close', () => resolve()));
    mapper.client.publish(deviceTopics('pump-1').mapperState, JSON.stringify({ reachable: true }), { qos: 1 });
    await mapperClosed;
    await waitFor(() => !hub.statusSnapshot().devices.find((d) => d.name === 'pump-1')!.online, 'pump offline: its own connection ended');
  });

  it('a mapper still serving a device just removed from the node keeps its connection; the messages are dropped', async () => {
    const { hub, url } = await startHub();
    const mapper = await ctx.kit.connectClient(url, asMapper);
    let closed = false;
    mapper.client.on('close', () => { closed = true; });
    hub.setDevices([makeDevice('meter-1', { protocol: 'modbus' })]);
    await mapper.client.publishAsync(meter2.reported, JSON.stringify({ properties: { temperature: 20 } }), { qos: 1 });
    await mapper.client.publishAsync(meter2.mapperState, JSON.stringify({ reachable: false, error: 'the mapper stopped serving the device' }), { qos: 1 });
    await mapper.client.publishAsync(meter1.reported, JSON.stringify({ properties: { temperature: 21 } }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices[0]!.reportedVersion === 1, 'meter-1 report taken');
    expect(closed).toBe(false);
    expect(hub.statusSnapshot().devices.map((d) => d.name)).toEqual(['meter-1']);
    expect(hub.statusSnapshot().messages.refused).toBe(0);
  });

  it('a device that leaves the mapper\'s protocol goes offline with its word', async () => {
    const { hub, url } = await startHub();
    const mapper = await ctx.kit.connectClient(url, asMapper);
    await mapper.client.publishAsync(meter1.mapperState, JSON.stringify({ reachable: true }), { qos: 1 });
    await waitFor(() => hub.statusSnapshot().devices.find((d) => d.name === 'meter-1')!.online, 'meter-1 online');
    hub.setDevices([makeDevice('meter-1', { protocol: 'opcua' }), makeDevice('meter-2', { protocol: 'modbus' })]);
    await waitFor(() => !hub.statusSnapshot().devices.find((d) => d.name === 'meter-1')!.online, 'meter-1 offline');
  });
});
