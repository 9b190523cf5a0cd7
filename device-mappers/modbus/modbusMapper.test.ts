import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../protocol/index.js';
import { waitFor } from '../../test/helpers/wait.js';
import { MapperLoop } from '../sdk/index.js';
import { startEdgeStandIn } from '../../test/helpers/mappers/edgeStandIn.js';
import { ModbusDriver } from './driver.js';
import { freePort, startModbusTestServer, type ModbusTestServer } from '../../test/helpers/mappers/modbusTestServer.js';

/**
 * The modbus mapper end to end: MapperLoop + ModbusDriver against modbus-serial ServerTCP
 * slaves, a real aedes broker, and a node:http stand-in for edgecore's device-list endpoint.
 */

const boilerModel = {
  protocol: 'modbus',
  properties: [
    { name: 'temperature', type: 'float', accessMode: 'ReadOnly', unit: '°C' },
    { name: 'setpoint', type: 'float', accessMode: 'ReadWrite', minimum: 5, maximum: 30 },
    { name: 'pump', type: 'boolean', accessMode: 'ReadWrite' },
  ],
};

const boiler = (name: string, port: number) => ({
  name,
  protocol: { name: 'modbus', config: { host: '127.0.0.1', port, unitId: 1, timeoutMs: 1000 } },
  properties: [
    { name: 'temperature', visitor: { register: 'holding', address: 10, scale: 0.1, dataType: 'int16' }, collectCycleMs: 100, reportCycleMs: 200 },
    { name: 'setpoint', visitor: { register: 'holding', address: 20, scale: 0.1 }, collectCycleMs: 100, reportCycleMs: 200 },
    { name: 'pump', visitor: { register: 'coil', address: 0 }, collectCycleMs: 100, reportCycleMs: 200 },
  ],
  desired: {},
  model: boilerModel,
});

describe('modbus mapper (MapperLoop + ModbusDriver)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  it('reports scaled registers, writes deltas into the registers, and isolates a dead device', async () => {
    let server: ModbusTestServer = await startModbusTestServer();
    cleanups.push(() => server.close());
    const edge = await startEdgeStandIn();
    cleanups.push(() => edge.close());
    const deadPort = await freePort(); // nobody listens there
    edge.devices.push(boiler('boiler-1', server.port), boiler('dead-plc', deadPort));
    server.holding[10] = 215;
    server.holding[20] = 200;

    const loop = new MapperLoop({
      protocol: 'modbus', node: edge.node, edgeUrl: edge.edgeUrl, mqttUrl: edge.mqttUrl, password: edge.password,
      driver: new ModbusDriver(), log: pino({ level: 'silent' }), backoff: { baseMs: 100, maxMs: 1000 }, connectTimeoutMs: 2000,
    });
    cleanups.push(() => loop.stop());
    await loop.start();

    await waitFor('boiler reports 21.5 °C', () => edge.reportsOf('boiler-1').some((r) => r.temperature === 21.5 && r.setpoint === 20 && r.pump === false));

    // The dead device: error state with back-off, while the boiler keeps reporting.
    await waitFor('dead-plc failed at least twice', () => (loop.status().devices.find((d) => d.name === 'dead-plc')?.consecutiveFailures ?? 0) >= 2);
    const dead = loop.status().devices.find((d) => d.name === 'dead-plc')!;
    expect(dead.lastError).toMatch(new RegExp(`connect: cannot open modbus TCP 127.0.0.1:${deadPort}: .*ECONNREFUSED`));
    expect(['backingOff', 'connecting']).toContain(dead.state);
    expect(edge.reportsOf('dead-plc')).toEqual([]);
    server.holding[10] = 0xfff6; // -1.0 °C as int16 tenths
    await waitFor('boiler keeps reporting', () => edge.reportsOf('boiler-1').some((r) => r.temperature === -1));
    expect(loop.status().devices.find((d) => d.name === 'boiler-1')).toMatchObject({ state: 'connected', consecutiveFailures: 0 });

    // Delta: lands in the registers (inverse scaling), then the read-back is reported.
    await edge.publish(deviceTopics('boiler-1').delta, { properties: { setpoint: 23.5, pump: true, temperature: 99 }, version: 4 });
    await waitFor('setpoint written to holding[20]', () => server.holding[20] === 235);
    await waitFor('pump coil set', () => server.coils[0] === true);
    await waitFor('reported converges to desired', () => {
      const values = loop.status().devices.find((d) => d.name === 'boiler-1')?.values;
      return values?.setpoint === 23.5 && values.pump === true;
    });
    expect(edge.reportsOf('boiler-1').some((r) => r.setpoint === 23.5)).toBe(true);
    expect(server.holding[10]).toBe(0xfff6); // the ReadOnly temperature was not written
    // Out of the model's range: refused before it reaches the device.
    await edge.publish(deviceTopics('boiler-1').delta, { properties: { setpoint: 45 }, version: 5 });
    await new Promise((r) => setTimeout(r, 300));
    expect(server.holding[20]).toBe(235);

    // The slave goes away: the boiler backs off; when it is back, the boiler reconnects and reports.
    const port = server.port;
    await server.close();
    await waitFor('boiler in error', () => {
      const h = loop.status().devices.find((d) => d.name === 'boiler-1');
      return h && h.state !== 'connected' && h.consecutiveFailures >= 2;
    });
    server = await startModbusTestServer({ port });
    server.holding[10] = 300;
    await waitFor('boiler back and reporting 30 °C', () => edge.reportsOf('boiler-1').some((r) => r.temperature === 30), 30_000);
    expect(loop.status().devices.find((d) => d.name === 'boiler-1')?.state).toBe('connected');
  });
});
