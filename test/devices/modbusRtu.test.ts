import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopics, type ModelProperty } from '../../protocol/index.js';
import { ModbusDriver } from '../../device-mappers/modbus/driver.js';
import { startModbusRtuTestServer, type ModbusRtuTestServer } from '../helpers/mappers/modbusTestServer.js';
import { MapperLoop, type DeviceConnection, type MapperDevice } from '../../device-mappers/sdk/index.js';
import { startEdgeStandIn } from '../helpers/mappers/edgeStandIn.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Modbus RTU over a real serial path: socat joins two pseudo-terminals, modbus-serial's
 * ServerSerial answers on one end and the mapper's RTU client (modbus-serial's buffered RTU
 * port over the `serialport` package) talks on the other. Same checks as the TCP tests
 * (device-mappers/modbus/*.test.ts): holding registers read, scaled, and written from desired.
 */

const HAVE_SOCAT = (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, 'socat')));
if (!HAVE_SOCAT) console.warn('[modbus RTU] SKIPPED: socat is not installed (apt-get install -y socat): it makes the pty pair that stands in for a serial line');

const BAUD = 19200;

/** Two linked pseudo-terminals, `a` and `b`: what one end writes, the other reads, like a null-modem cable. */
interface SerialLink {
  a: string;
  b: string;
  close(): Promise<void>;
}

async function startSerialLink(dir: string, name: string): Promise<SerialLink> {
  const a = join(dir, `${name}-a`);
  const b = join(dir, `${name}-b`);
  const socat = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => socat.once('exit', () => resolve()));
  const stop = async (child: ChildProcess) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  let log = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`socat did not link the ptys within 10 s: ${log}`)), 10_000);
      socat.stderr!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        // socat logs this once both ptys exist and it is relaying between them.
        if (log.includes('starting data transfer loop') && existsSync(a) && existsSync(b)) {
          clearTimeout(timer);
          resolve();
        }
      });
      socat.once('error', (err) => { clearTimeout(timer); reject(err); });
      socat.once('exit', (code) => { clearTimeout(timer); reject(new Error(`socat exited with ${String(code)}: ${log}`)); });
    });
  } catch (err) {
    await stop(socat);
    throw err;
  }
  return { a, b, close: () => stop(socat) };
}

const prop = (name: string, type: ModelProperty['type'], accessMode: ModelProperty['accessMode'] = 'ReadWrite'): ModelProperty => ({ name, type, accessMode });

const rtuConfig = (serialPath: string) => ({ serialPath, baudRate: BAUD, unitId: 1, timeoutMs: 2000 });

describe.skipIf(!HAVE_SOCAT)('Modbus RTU over a pty pair (socat)', () => {
  let dir: string;
  const cleanups: (() => Promise<void>)[] = [];
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'modbus-rtu-')); });
  afterAll(async () => {
    // Clients and the slave close their ends before socat goes away.
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  async function rtuSlave(name: string): Promise<{ link: SerialLink; slave: ModbusRtuTestServer }> {
    const link = await startSerialLink(dir, name);
    cleanups.push(() => link.close());
    const slave = await startModbusRtuTestServer(link.a, { baudRate: BAUD });
    cleanups.push(() => slave.close());
    return { link, slave };
  }

  describe('ModbusDriver', () => {
    let slave: ModbusRtuTestServer;
    let conn: DeviceConnection;
    beforeAll(async () => {
      const started = await rtuSlave('driver');
      slave = started.slave;
      const device: MapperDevice = {
        name: 'plc-rtu', protocol: { name: 'modbus', config: rtuConfig(started.link.b) }, properties: [], desired: {},
        model: { protocol: 'modbus', properties: [prop('x', 'int')] },
      };
      conn = await new ModbusDriver().connect(device);
      cleanups.push(() => conn.close());
    });

    it('reads holding registers and scales them', async () => {
      slave.holding[10] = 215;
      expect(await conn.read({ register: 'holding', address: 10, scale: 0.1 }, prop('temperature', 'float', 'ReadOnly'))).toBe(21.5);
      slave.holding[11] = 0xfff6;
      expect(await conn.read({ register: 'holding', address: 11, dataType: 'int16' }, prop('delta', 'int'))).toBe(-10);
      slave.holding[30] = 0x41b4; // 22.5 as float32 over two registers
      slave.holding[31] = 0x0000;
      expect(await conn.read({ register: 'holding', address: 30, dataType: 'float32' }, prop('f', 'float'))).toBe(22.5);
    });

    it('writes values into holding registers (one: FC6, two: FC16) and coils', async () => {
      const setpoint = prop('setpoint', 'float');
      const visitor = { register: 'holding', address: 20, scale: 0.1, offset: -5 };
      await conn.write(visitor, setpoint, 23.5);
      expect(slave.holding[20]).toBe(285); // (23.5 - -5) / 0.1
      expect(await conn.read(visitor, setpoint)).toBe(23.5);
      await conn.write({ register: 'holding', address: 40, dataType: 'int32' }, prop('big', 'int'), -70000);
      expect([slave.holding[40], slave.holding[41]]).toEqual([0xfffe, 0xee90]); // -70000 = 0xFFFEEE90, high word first
      await conn.write({ register: 'coil', address: 3 }, prop('on', 'boolean'), true);
      expect(slave.coils[3]).toBe(true);
    });
  });

  it('the modbus mapper reports scaled registers and writes desired values over RTU', async () => {
    const { link, slave } = await rtuSlave('mapper');
    const edge = await startEdgeStandIn();
    cleanups.push(() => edge.close());
    edge.devices.push({
      name: 'boiler-rtu',
      protocol: { name: 'modbus', config: rtuConfig(link.b) },
      properties: [
        { name: 'temperature', visitor: { register: 'holding', address: 10, scale: 0.1, dataType: 'int16' }, collectCycleMs: 200, reportCycleMs: 300 },
        { name: 'setpoint', visitor: { register: 'holding', address: 20, scale: 0.1 }, collectCycleMs: 200, reportCycleMs: 300 },
      ],
      desired: {},
      model: {
        protocol: 'modbus',
        properties: [
          { name: 'temperature', type: 'float', accessMode: 'ReadOnly' },
          { name: 'setpoint', type: 'float', accessMode: 'ReadWrite', minimum: 5, maximum: 30 },
        ],
      },
    });
    slave.holding[10] = 0xfff6; // -1.0 °C in int16 tenths
    slave.holding[20] = 200;
    const loop = new MapperLoop({
      protocol: 'modbus', node: edge.node, edgeUrl: edge.edgeUrl, mqttUrl: edge.mqttUrl, password: edge.password,
      driver: new ModbusDriver(), log: pino({ level: 'silent' }), backoff: { baseMs: 100, maxMs: 1000 }, connectTimeoutMs: 5000,
    });
    cleanups.push(() => loop.stop());
    await loop.start();

    // A report carries the properties that changed since the last one, so the two may come apart.
    const reported = (name: string, value: number) => edge.reportsOf('boiler-rtu').some((r) => r[name] === value);
    await waitFor('boiler reports -1 °C and setpoint 20', () => reported('temperature', -1) && reported('setpoint', 20), 30_000);
    await edge.publish(deviceTopics('boiler-rtu').delta, { properties: { setpoint: 23.5 }, version: 2 });
    await waitFor('setpoint written to holding[20]', () => slave.holding[20] === 235, 30_000);
    await waitFor('the written setpoint is read back and reported', () => reported('setpoint', 23.5), 30_000);
    expect(slave.holding[10]).toBe(0xfff6); // the ReadOnly temperature was not written
    expect(loop.status().devices.find((d) => d.name === 'boiler-rtu')).toMatchObject({ state: 'connected', consecutiveFailures: 0 });
  });
});
