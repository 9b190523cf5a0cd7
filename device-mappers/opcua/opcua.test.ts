import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, MessageSecurityMode, OPCUACertificateManager, OPCUAServer, SecurityPolicy, StatusCodes, Variant } from 'node-opcua';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelProperty } from '../../protocol/index.js';
import { deviceTopics } from '../../protocol/index.js';
import { waitFor } from '../../test/helpers/wait.js';
import { freePort } from '../../test/helpers/mappers/modbusTestServer.js';
import { MapperLoop, type MapperDevice } from '../sdk/index.js';
import { startEdgeStandIn } from '../../test/helpers/mappers/edgeStandIn.js';
import { propertyValueToVariantValue, variantToPropertyValue } from './convert.js';
import { OpcuaDriver } from './driver.js';

const prop = (name: string, type: ModelProperty['type'], accessMode: ModelProperty['accessMode'] = 'ReadWrite'): ModelProperty => ({ name, type, accessMode });

describe('OPC UA value conversion', () => {
  it('maps variant values to twin values by the property type', () => {
    expect(variantToPropertyValue(21.5, DataType.Double, prop('t', 'float'))).toBe(21.5);
    expect(variantToPropertyValue(3, DataType.Int32, prop('m', 'int'))).toBe(3);
    expect(variantToPropertyValue([0xffffffff, 0xfffffffe], DataType.Int64, prop('i', 'int'))).toBe(-2);
    expect(variantToPropertyValue([1, 0], DataType.UInt64, prop('u', 'int'))).toBe(2 ** 32);
    expect(variantToPropertyValue(true, DataType.Boolean, prop('b', 'int'))).toBe(1);
    expect(variantToPropertyValue({ text: 'hi', locale: 'en' }, DataType.LocalizedText, prop('s', 'string'))).toBe('hi');
    expect(variantToPropertyValue(Buffer.from('ab'), DataType.ByteString, prop('raw', 'bytes'))).toBe('YWI=');
    expect(() => variantToPropertyValue(new Float64Array([1, 2]), DataType.Double, prop('a', 'float'))).toThrow(/arrays are not supported/);
    expect(() => variantToPropertyValue('x', DataType.String, prop('n', 'float'))).toThrow(/is float but the OPC UA variable is String/);
  });

  it('converts twin values to the variable\'s own DataType', () => {
    expect(propertyValueToVariantValue(30, DataType.Double, 'p')).toBe(30);
    expect(propertyValueToVariantValue(-2, DataType.Int64, 'p')).toEqual([0xffffffff, 0xfffffffe]);
    expect(propertyValueToVariantValue(true, DataType.Int16, 'p')).toBe(1);
    expect(propertyValueToVariantValue('YWI=', DataType.ByteString, 'p')).toEqual(Buffer.from('ab'));
    expect(() => propertyValueToVariantValue(1.5, DataType.Int32, 'p')).toThrow(/not an integer/);
    expect(() => propertyValueToVariantValue('x', DataType.Double, 'p')).toThrow(/cannot write "x"/);
  });
});

/** The driver and the loop against a node-opcua OPCUAServer started here on 127.0.0.1. */
describe('OPC UA against a real OPCUAServer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-opcua-'));
  let server: OPCUAServer;
  let endpoint: string;
  const values = { setpoint: 21.5, enabled: false, temperature: 18.25 };

  beforeAll(async () => {
    server = new OPCUAServer({
      port: 0, hostname: '127.0.0.1',
      serverCertificateManager: new OPCUACertificateManager({ rootFolder: join(dir, 'server-pki'), automaticallyAcceptUnknownCertificate: true }),
      // Also the user-certificate PKI, which would otherwise land in ~/.config.
      userCertificateManager: new OPCUACertificateManager({ rootFolder: join(dir, 'user-pki'), automaticallyAcceptUnknownCertificate: true }),
      securityModes: [MessageSecurityMode.None], securityPolicies: [SecurityPolicy.None], allowAnonymous: true,
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace!;
    const ns = addressSpace.getOwnNamespace();
    const boiler = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: 'Boiler' });
    ns.addVariable({
      componentOf: boiler, nodeId: 's=Setpoint', browseName: 'Setpoint', dataType: 'Double', minimumSamplingInterval: 100,
      value: {
        get: () => new Variant({ dataType: DataType.Double, value: values.setpoint }),
        set: (v: Variant) => { values.setpoint = Number(v.value); return StatusCodes.Good; },
      },
    });
    ns.addVariable({
      componentOf: boiler, nodeId: 's=Enabled', browseName: 'Enabled', dataType: 'Boolean', minimumSamplingInterval: 100,
      value: {
        get: () => new Variant({ dataType: DataType.Boolean, value: values.enabled }),
        set: (v: Variant) => { values.enabled = v.value === true; return StatusCodes.Good; },
      },
    });
    ns.addVariable({
      componentOf: boiler, nodeId: 's=Temperature', browseName: 'Temperature', dataType: 'Float', minimumSamplingInterval: 100,
      value: { get: () => new Variant({ dataType: DataType.Float, value: values.temperature }) },
    });
    await server.start();
    endpoint = `opc.tcp://127.0.0.1:${server.endpoints[0]!.port}`;
  }, 60_000);

  afterAll(async () => {
    await server?.shutdown(0);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const device = (name: string, desired: Record<string, number | boolean> = {}): MapperDevice => ({
    name,
    protocol: { name: 'opcua', config: { endpoint, timeoutMs: 5000 } },
    properties: [
      { name: 'temperature', visitor: { nodeId: 'ns=1;s=Temperature' }, collectCycleMs: 200, reportCycleMs: 200 },
      { name: 'setpoint', visitor: { nodeId: 'ns=1;s=Setpoint' }, collectCycleMs: 200, reportCycleMs: 200 },
      { name: 'enabled', visitor: { nodeId: 'ns=1;s=Enabled' }, collectCycleMs: 200, reportCycleMs: 200 },
    ],
    desired,
    model: {
      protocol: 'opcua',
      properties: [prop('temperature', 'float', 'ReadOnly'), prop('setpoint', 'double'), prop('enabled', 'boolean')],
    },
  });

  it('reads and writes variables through the driver', async () => {
    const conn = await new OpcuaDriver({ pkiRoot: join(dir, 'client-pki') }).connect(device('direct'));
    try {
      expect(await conn.read({ nodeId: 'ns=1;s=Temperature' }, prop('temperature', 'float'))).toBe(18.25);
      await conn.write({ nodeId: 'ns=1;s=Setpoint' }, prop('setpoint', 'double'), 22.5);
      expect(values.setpoint).toBe(22.5);
      expect(await conn.read({ nodeId: 'ns=1;s=Setpoint' }, prop('setpoint', 'double'))).toBe(22.5);
      await expect(conn.read({ nodeId: 'ns=1;s=Nope' }, prop('x', 'float'))).rejects.toThrow(/BadNodeIdUnknown/);
      await expect(conn.read({ nodeId: 'not a node id' }, prop('x', 'float'))).rejects.toThrow(/bad nodeId "not a node id"/);
      await expect(conn.read({}, prop('x', 'float'))).rejects.toThrow(/opcua visitor of "x".*nodeId/);
    } finally {
      await conn.close();
    }
  });

  it('a closed port gives a clear error', async () => {
    const port = await freePort();
    const bad = { ...device('gone'), protocol: { name: 'opcua', config: { endpoint: `opc.tcp://127.0.0.1:${port}`, timeoutMs: 2000 } } };
    await expect(new OpcuaDriver({ pkiRoot: join(dir, 'client-pki') }).connect(bad)).rejects.toThrow(new RegExp(`cannot open OPC UA session at opc.tcp://127.0.0.1:${port}`));
  });

  it('the mapper drives the variable to desired and reports it back', async () => {
    const edge = await startEdgeStandIn();
    const loop = new MapperLoop({
      protocol: 'opcua', node: edge.node, edgeUrl: edge.edgeUrl, mqttUrl: edge.mqttUrl, password: edge.password,
      driver: new OpcuaDriver({ pkiRoot: join(dir, 'client-pki') }), log: pino({ level: 'silent' }), backoff: { baseMs: 200, maxMs: 2000 },
    });
    try {
      edge.devices.push(device('boiler-ua', { setpoint: 30 }));
      await loop.start();
      await waitFor('setpoint written from the list\'s desired', () => values.setpoint === 30, 30_000);
      await waitFor('reported setpoint 30 and temperature', () => edge.reportsOf('boiler-ua').some((r) => r.setpoint === 30)
        && edge.reportsOf('boiler-ua').some((r) => r.temperature === 18.25), 30_000);
      await edge.publish(deviceTopics('boiler-ua').delta, { properties: { enabled: true }, version: 2 });
      await waitFor('enabled written from the delta', () => values.enabled, 30_000);
      await waitFor('enabled reported', () => edge.reportsOf('boiler-ua').some((r) => r.enabled === true), 30_000);
    } finally {
      await loop.stop();
      await edge.close();
    }
  });
});
