import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../protocol/index.js';
import { waitFor } from '../../test/helpers/wait.js';
import { freePort } from '../../test/helpers/mappers/modbusTestServer.js';
import { VirtualDriver } from '../virtual/driver.js';
import type { ProtocolDriver } from './driver.js';
import { MapperLoop } from './mapperLoop.js';
import { startEdgeStandIn, type EdgeStandIn } from '../../test/helpers/mappers/edgeStandIn.js';

/**
 * The shared loop end to end: a real aedes broker and a node:http stand-in for edgecore's
 * device-list endpoint (edgecore's own endpoint is built separately and is not used here;
 * the stand-in serves exactly the contract's `{node, devices}` answer), and virtual devices.
 */

const thermometer = (name: string, cycles = { collectCycleMs: 100, reportCycleMs: 200 }) => ({
  name, protocol: { name: 'virtual', config: { kind: 'thermometer', start: 20, drift: 0.5 } },
  properties: [{ name: 'temperature', visitor: {}, ...cycles }],
  desired: {},
  model: { protocol: 'virtual', properties: [{ name: 'temperature', type: 'float', accessMode: 'ReadOnly', minimum: -40, maximum: 85 }] },
});

const lamp = (name: string, desired: Record<string, unknown> = {}) => ({
  name, protocol: { name: 'virtual', config: { kind: 'switch' } },
  properties: [{ name: 'on', visitor: {}, collectCycleMs: 100, reportCycleMs: 100 }],
  desired,
  model: { protocol: 'virtual', properties: [{ name: 'on', type: 'boolean', accessMode: 'ReadWrite' }] },
});

const counter = (name: string) => ({
  name, protocol: { name: 'virtual', config: { kind: 'counter', start: 100, periodMs: 50 } },
  properties: [{ name: 'count', visitor: {}, collectCycleMs: 100, reportCycleMs: 100 }],
  model: { protocol: 'virtual', properties: [{ name: 'count', type: 'int', accessMode: 'ReadWrite', minimum: 0 }] },
});

describe('MapperLoop with virtual devices', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  async function setup(devices: Record<string, unknown>[], opts: { mqtt?: boolean; refreshSeconds?: number; driver?: ProtocolDriver } = {}) {
    const edge = await startEdgeStandIn({ mqtt: opts.mqtt, mqttPort: opts.mqtt === false ? await freePort() : 0 });
    cleanups.push(() => edge.close());
    edge.devices.push(...devices);
    const loop = new MapperLoop({
      protocol: 'virtual', node: edge.node, edgeUrl: edge.edgeUrl, mqttUrl: edge.mqttUrl, password: edge.password,
      driver: opts.driver ?? new VirtualDriver(), log: pino({ level: 'silent' }), refreshSeconds: opts.refreshSeconds ?? 30,
      backoff: { baseMs: 100, maxMs: 1000 },
    });
    cleanups.push(() => loop.stop());
    await loop.start();
    return { edge, loop };
  }

  it('connects as the contract says and publishes reported values on the report cycle', async () => {
    const { edge, loop } = await setup([thermometer('thermo-1')]);
    await waitFor('three reports of thermo-1', () => edge.reportsOf('thermo-1').length >= 3);
    expect(edge.connects[0]).toEqual({ clientId: 'mapper-virtual-edge-1', username: 'mapper-virtual', clean: false });
    for (const report of edge.reportsOf('thermo-1')) {
      expect(Object.keys(report)).toEqual(['temperature']);
      expect(typeof report.temperature).toBe('number');
    }
    const status = loop.status();
    expect(status.mqtt.connected).toBe(true);
    expect(status.devices).toHaveLength(1);
    expect(status.devices[0]).toMatchObject({ name: 'thermo-1', state: 'connected', consecutiveFailures: 0, lastError: null });
    expect(typeof status.devices[0]!.values.temperature).toBe('number');
  });

  it('writes a delta to the device and reports the value back; ReadOnly and unknown properties are skipped', async () => {
    const { edge, loop } = await setup([lamp('lamp-1'), thermometer('thermo-2'), counter('counter-1')]);
    await waitFor('lamp reports off', () => edge.reportsOf('lamp-1').some((r) => r.on === false));
    await waitFor('counter reports', () => edge.reportsOf('counter-1').some((r) => typeof r.count === 'number' && r.count >= 100));

    await edge.publish(deviceTopics('lamp-1').delta, { properties: { on: true, colour: 'red' }, version: 2 });
    await waitFor('lamp reports on', () => edge.reportsOf('lamp-1').some((r) => r.on === true));
    expect(loop.status().devices.find((d) => d.name === 'lamp-1')?.values.on).toBe(true);

    // Counter reset: a ReadWrite int.
    await edge.publish(deviceTopics('counter-1').delta, { properties: { count: 0 }, version: 1 });
    await waitFor('counter reset reported', () => edge.reportsOf('counter-1').some((r) => r.count === 0));

    // ReadOnly: logged and skipped; the thermometer keeps reporting.
    const before = edge.reportsOf('thermo-2').length;
    await edge.publish(deviceTopics('thermo-2').delta, { properties: { temperature: 50 }, version: 1 });
    await waitFor('thermometer keeps reporting', () => edge.reportsOf('thermo-2').length >= before + 2);
    expect(loop.status().devices.find((d) => d.name === 'thermo-2')).toMatchObject({ state: 'connected', consecutiveFailures: 0 });

    // A stale delta (older version than one already applied) is ignored.
    const reportsSoFar = edge.reportsOf('lamp-1').length;
    await edge.publish(deviceTopics('lamp-1').delta, { properties: { on: false }, version: 1 });
    await new Promise((r) => setTimeout(r, 400));
    expect(loop.status().devices.find((d) => d.name === 'lamp-1')?.values.on).toBe(true);
    expect(edge.reportsOf('lamp-1').slice(reportsSoFar).some((r) => r.on === false)).toBe(false);
  });

  it('applies the retained desired section and the list\'s desired when a device starts', async () => {
    const { edge } = await setup([lamp('lamp-2', { on: true })]);
    await waitFor('lamp-2 driven to desired on', () => edge.reportsOf('lamp-2').some((r) => r.on === true));
    await edge.publish(deviceTopics('lamp-2').desired, { properties: { on: false }, version: 5 }, true);
    await waitFor('lamp-2 follows twin/desired', () => edge.reportsOf('lamp-2').at(-1)?.on === false);
  });

  it('writes a desired value once when the edge sends twin/desired and twin/delta for the same change', async () => {
    // edgecore publishes both for one change, with the same version (twinEngine: desiredMessage, deltaMessage).
    const virtual = new VirtualDriver();
    const writes: unknown[] = [];
    const counting: ProtocolDriver = {
      connect: async (device) => {
        const conn = await virtual.connect(device);
        return { read: (v, p) => conn.read(v, p), close: () => conn.close(),
          write: (v, p, value) => { writes.push(value); return conn.write(v, p, value); } };
      },
    };
    const { edge } = await setup([lamp('lamp-8')], { driver: counting });
    await waitFor('lamp-8 reports off', () => edge.reportsOf('lamp-8').some((r) => r.on === false));
    await edge.publish(deviceTopics('lamp-8').desired, { properties: { on: true }, version: 3 }, true);
    await edge.publish(deviceTopics('lamp-8').delta, { properties: { on: true }, version: 3 });
    await waitFor('lamp-8 reports on', () => edge.reportsOf('lamp-8').some((r) => r.on === true));
    // A later change, sent after the pair on the same connection, marks the end of their handling.
    await edge.publish(deviceTopics('lamp-8').desired, { properties: { on: false }, version: 4 }, true);
    await edge.publish(deviceTopics('lamp-8').delta, { properties: { on: false }, version: 4 });
    await waitFor('lamp-8 back off', () => edge.reportsOf('lamp-8').at(-1)?.on === false);
    expect(writes).toEqual([true, false]);
  });

  it('picks up added and removed devices on refresh', async () => {
    const { edge, loop } = await setup([thermometer('thermo-3')], { refreshSeconds: 0.2 });
    await waitFor('thermo-3 reports', () => edge.reportsOf('thermo-3').length > 0);
    edge.devices.push(lamp('lamp-3'));
    await waitFor('lamp-3 reports', () => edge.reportsOf('lamp-3').length > 0);
    edge.devices.splice(0, 1);
    await waitFor('thermo-3 removed', () => loop.status().devices.map((d) => d.name).join() === 'lamp-3');
    // Not served here any more: the edge is told, so it no longer counts the device online on our word.
    await waitFor('thermo-3 unreachable said', () => edge.published.some((m) => m.device === 'thermo-3' && m.rest === 'mapper/state'
      && JSON.stringify(m.payload) === JSON.stringify({ reachable: false, error: 'the mapper stopped serving the device' })));
    // A device the list cannot describe is skipped with its reason; the others run.
    edge.devices.push({ name: 'broken', protocol: { name: 'virtual', config: {} }, properties: [] });
    await waitFor('broken rejected', () => loop.status().deviceList.rejected.some((r) => r.name === 'broken' && r.reason.includes('model')));
    expect(loop.status().devices.map((d) => d.name)).toEqual(['lamp-3']);
  });

  it('refreshes the device list at once when the edge clears a device\'s retained desired (the device left the node)', async () => {
    const { edge, loop } = await setup([thermometer('thermo-7'), lamp('lamp-7')], { refreshSeconds: 3600 });
    await waitFor('both report', () => edge.reportsOf('thermo-7').length > 0 && edge.reportsOf('lamp-7').length > 0);
    edge.devices.splice(0, 1);
    await edge.publish(deviceTopics('thermo-7').desired, null, true);
    await waitFor('thermo-7 no longer served', () => loop.status().devices.map((d) => d.name).join() === 'lamp-7');
  });

  it('keeps retrying the broker with back-off until it comes up, then reports', async () => {
    const { edge, loop } = await setup([thermometer('thermo-4')], { mqtt: false });
    await waitFor('two failed mqtt attempts', () => loop.status().mqtt.consecutiveFailures >= 2);
    expect(loop.status().mqtt.connected).toBe(false);
    // The device itself is fine meanwhile: it reads, and waits to report.
    await waitFor('thermo-4 read while offline', () => typeof loop.status().devices[0]?.values.temperature === 'number');
    await edge.startMqtt();
    await waitFor('thermo-4 reports after the broker came up', () => edge.reportsOf('thermo-4').length > 0, 30_000);
    // Its connection came up while MQTT was down: the state is sent once MQTT is.
    await waitFor('thermo-4 reachable said', () => edge.published.some((m) => m.device === 'thermo-4' && m.rest === 'mapper/state'));
    expect(loop.status().mqtt).toMatchObject({ connected: true, consecutiveFailures: 0 });
  });

  it('a device that cannot connect backs off without stopping the others', async () => {
    const dead = { ...lamp('lamp-dead'), protocol: { name: 'virtual', config: { kind: 'switch', unreachable: true } } };
    const { edge, loop } = await setup([dead, thermometer('thermo-5')]);
    await waitFor('dead lamp failed twice', () => (loop.status().devices.find((d) => d.name === 'lamp-dead')?.consecutiveFailures ?? 0) >= 2);
    const health = loop.status().devices.find((d) => d.name === 'lamp-dead')!;
    expect(health.lastError).toContain('unreachable');
    expect(['backingOff', 'connecting']).toContain(health.state);
    await waitFor('thermo-5 keeps reporting', () => edge.reportsOf('thermo-5').length >= 3);
    // The edge hears which devices the mapper reaches (mapper/state), once per change, not per retry.
    const states = (device: string) => edge.published.filter((m) => m.device === device && m.rest === 'mapper/state').map((m) => m.payload);
    expect(states('thermo-5')).toEqual([{ reachable: true }]);
    expect(states('lamp-dead')).toEqual([{ reachable: false, error: expect.stringContaining('unreachable') as unknown }]);
  });

  it('tells the edge when an unreachable device fails for a different reason, not on every retry', async () => {
    // A field device whose failure changes: refused twice, then no route (a switch port went
    // down), then refused again. Each attempt goes through the real loop and back-off.
    const errors = ['connect ECONNREFUSED 10.0.0.9:502', 'connect ECONNREFUSED 10.0.0.9:502',
      'connect EHOSTUNREACH 10.0.0.9:502', 'connect EHOSTUNREACH 10.0.0.9:502', 'connect ECONNREFUSED 10.0.0.9:502'];
    let attempts = 0;
    const failing: ProtocolDriver = {
      connect: () => Promise.reject(new Error(errors[Math.min(attempts++, errors.length - 1)])),
    };
    const { edge, loop } = await setup([lamp('lamp-flaky')], { driver: failing });
    await waitFor('six attempts', () => (loop.status().devices[0]?.consecutiveFailures ?? 0) >= 6);
    const states = edge.published.filter((m) => m.device === 'lamp-flaky' && m.rest === 'mapper/state').map((m) => m.payload);
    expect(states).toEqual([
      { reachable: false, error: expect.stringContaining('ECONNREFUSED') as unknown },
      { reachable: false, error: expect.stringContaining('EHOSTUNREACH') as unknown },
      { reachable: false, error: expect.stringContaining('ECONNREFUSED') as unknown },
    ]);
  });

  it('keeps running devices when the device list cannot be fetched', async () => {
    const { edge, loop } = await setup([thermometer('thermo-6')], { refreshSeconds: 0.2 });
    await waitFor('thermo-6 reports', () => edge.reportsOf('thermo-6').length > 0);
    const wrong = new MapperLoop({
      protocol: 'virtual', node: 'edge-1', edgeUrl: edge.edgeUrl, mqttUrl: edge.mqttUrl, password: 'wrong',
      driver: new VirtualDriver(), log: pino({ level: 'silent' }), backoff: { baseMs: 100, maxMs: 500 },
    });
    cleanups.push(() => wrong.stop());
    await wrong.start();
    expect(wrong.status().deviceList.lastError).toMatch(/answered 401/);
    expect(loop.status().deviceList.lastError).toBeNull();
  });
});
