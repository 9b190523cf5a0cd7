import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelProperty } from '../../protocol/index.js';
import type { DeviceConnection, MapperDevice } from '../sdk/index.js';
import { ModbusDriver } from './driver.js';
import { freePort, startModbusTestServer, type ModbusTestServer } from '../../test/helpers/mappers/modbusTestServer.js';

const prop = (name: string, type: ModelProperty['type'], accessMode: ModelProperty['accessMode'] = 'ReadWrite'): ModelProperty => ({ name, type, accessMode });

function device(config: Record<string, unknown>): MapperDevice {
  return {
    name: 'plc-1', protocol: { name: 'modbus', config }, properties: [], desired: {},
    model: { protocol: 'modbus', properties: [prop('x', 'int')] },
  };
}

/** The driver against modbus-serial's own ServerTCP on 127.0.0.1. */
describe('ModbusDriver (TCP) against a real ServerTCP', () => {
  let server: ModbusTestServer;
  let conn: DeviceConnection;
  beforeAll(async () => {
    server = await startModbusTestServer();
    conn = await new ModbusDriver().connect(device({ host: '127.0.0.1', port: server.port, unitId: 1, timeoutMs: 2000 }));
  });
  afterAll(async () => {
    await conn?.close();
    await server?.close();
  });

  it('reads a holding register and scales it', async () => {
    server.holding[10] = 215;
    expect(await conn.read({ register: 'holding', address: 10, scale: 0.1 }, prop('temperature', 'float', 'ReadOnly'))).toBe(21.5);
    server.holding[11] = 0xfff6;
    expect(await conn.read({ register: 'holding', address: 11, dataType: 'int16' }, prop('delta', 'int'))).toBe(-10);
    expect(await conn.read({ register: 'holding', address: 11 }, prop('raw', 'int'))).toBe(65526);
  });

  it('reads 32-bit values over two registers in both word orders', async () => {
    server.holding[30] = 0x41b4; // 22.5 as float32: 0x41B40000
    server.holding[31] = 0x0000;
    expect(await conn.read({ register: 'holding', address: 30, dataType: 'float32' }, prop('f', 'float'))).toBe(22.5);
    server.input[0] = 0x0001; // low word first: 0x0002_0001
    server.input[1] = 0x0002;
    expect(await conn.read({ register: 'input', address: 0, dataType: 'uint32', wordOrder: 'low-first' }, prop('u', 'int'))).toBe(0x20001);
  });

  it('writes a desired value into the holding register (inverse scaling)', async () => {
    const setpoint = prop('setpoint', 'float');
    const visitor = { register: 'holding', address: 20, scale: 0.1, offset: -5 };
    await conn.write(visitor, setpoint, 23.5);
    expect(server.holding[20]).toBe(285); // (23.5 - -5) / 0.1
    expect(await conn.read(visitor, setpoint)).toBe(23.5);
    await conn.write({ register: 'holding', address: 40, dataType: 'int32' }, prop('big', 'int'), -70000);
    expect(await conn.read({ register: 'holding', address: 40, dataType: 'int32' }, prop('big', 'int'))).toBe(-70000);
  });

  it('reads and writes coils, and refuses to write inputs', async () => {
    const on = prop('on', 'boolean');
    await conn.write({ register: 'coil', address: 3 }, on, true);
    expect(server.coils[3]).toBe(true);
    expect(await conn.read({ register: 'coil', address: 3 }, on)).toBe(true);
    server.discrete[4] = true;
    expect(await conn.read({ register: 'discrete', address: 4 }, prop('alarm', 'int'))).toBe(1);
    await expect(conn.write({ register: 'input', address: 0 }, prop('u', 'int'), 1)).rejects.toThrow(/cannot write/);
    await expect(conn.write({ register: 'holding', address: 5, dataType: 'int16' }, prop('small', 'int'), 40000)).rejects.toThrow(/does not fit int16/);
  });

  it('names a bad visitor', async () => {
    await expect(conn.read({ register: 'holdin', address: 1 }, prop('x', 'int'))).rejects.toThrow(/bad modbus visitor of "x" at "visitor.register"/);
    await expect(conn.read({ register: 'holding', address: 1, dataType: 'float32', quantity: 1 }, prop('y', 'float'))).rejects.toThrow(/takes 2 register/);
  });
});

describe('ModbusDriver connection errors', () => {
  it('a closed port gives a clear error', async () => {
    const port = await freePort();
    await expect(new ModbusDriver().connect(device({ host: '127.0.0.1', port }))).rejects.toThrow(new RegExp(`cannot open modbus TCP 127.0.0.1:${port}: .*ECONNREFUSED`));
  });

  it('RTU goes through the serial port (no hardware here: a missing device gives a clear error)', async () => {
    await expect(new ModbusDriver().connect(device({ serialPath: '/dev/ttyEF-missing0', baudRate: 19200, unitId: 2 })))
      .rejects.toThrow(/cannot open modbus RTU \/dev\/ttyEF-missing0: .*No such file or directory/);
  });

  it('a bad config names the field', async () => {
    await expect(new ModbusDriver().connect(device({ host: '127.0.0.1', port: 'x' }))).rejects.toThrow(/bad modbus TCP config at "config.port"/);
    await expect(new ModbusDriver().connect(device({ serialPath: '/dev/ttyX', baudRate: -1 }))).rejects.toThrow(/bad modbus RTU config at "config.baudRate"/);
  });
});
