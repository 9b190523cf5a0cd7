import { createServer } from 'node:net';
import { ServerSerial, ServerTCP } from 'modbus-serial';

/**
 * Real Modbus slaves for tests and demos: modbus-serial's ServerTCP on 127.0.0.1, or its
 * ServerSerial (Modbus RTU) on a serial device such as one end of a pty pair. Their registers
 * are plain arrays the caller can inspect and change.
 */
export interface ModbusRegisters {
  holding: number[];
  input: number[];
  coils: boolean[];
  discrete: boolean[];
}

export interface ModbusTestServer extends ModbusRegisters {
  port: number;
  close(): Promise<void>;
}

export interface ModbusRtuTestServer extends ModbusRegisters {
  serialPath: string;
  close(): Promise<void>;
}

/** Register arrays of `size` entries and the service vector modbus-serial's servers call. */
function registerBank(size: number) {
  const registers: ModbusRegisters = {
    holding: new Array<number>(size).fill(0),
    input: new Array<number>(size).fill(0),
    coils: new Array<boolean>(size).fill(false),
    discrete: new Array<boolean>(size).fill(false),
  };
  const check = (addr: number) => {
    if (addr < 0 || addr >= size) throw Object.assign(new Error('illegal data address'), { modbusErrorCode: 0x02 });
  };
  const vector = {
    getHoldingRegister: (addr: number) => { check(addr); return registers.holding[addr]!; },
    getInputRegister: (addr: number) => { check(addr); return registers.input[addr]!; },
    getCoil: (addr: number) => { check(addr); return registers.coils[addr]!; },
    getDiscreteInput: (addr: number) => { check(addr); return registers.discrete[addr]!; },
    setRegister: (addr: number, value: number) => { check(addr); registers.holding[addr] = value; },
    setCoil: (addr: number, value: boolean) => { check(addr); registers.coils[addr] = value; },
  };
  return { registers, vector };
}

/** A port nobody listens on right now (the OS picks it; we release it at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ port: 0, host: '127.0.0.1' }, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** `port` pins the port (to restart a server where a mapper expects it); otherwise a free one is picked. */
export async function startModbusTestServer(opts: { size?: number; port?: number } = {}): Promise<ModbusTestServer> {
  const { registers, vector } = registerBank(opts.size ?? 128);
  // ServerTCP treats port 0 as "default 502", so pick a free port first; retry if it got taken meanwhile.
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? await freePort();
    const server = new ServerTCP(vector, { host: '127.0.0.1', port, unitID: 255 });
    const ready = await new Promise<Error | null>((resolve) => {
      server.on('initialized', () => resolve(null));
      server.on('serverError', (err) => resolve(err ?? new Error('modbus test server failed to listen')));
    });
    if (!ready) {
      return {
        port, ...registers,
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }
    if (attempt >= 5) throw ready;
  }
}

/**
 * A Modbus RTU slave answering every unit id on `serialPath` (8N1 at `baudRate`). modbus-serial
 * frames a request by a gap of silence on the line (30 ms), so each request costs that much.
 */
export async function startModbusRtuTestServer(serialPath: string, opts: { size?: number; baudRate?: number } = {}): Promise<ModbusRtuTestServer> {
  const { registers, vector } = registerBank(opts.size ?? 128);
  let server: InstanceType<typeof ServerSerial> | undefined;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`modbus RTU test server: ${serialPath} did not open within 10 s`)), 10_000);
    const fail = (err: unknown) => { clearTimeout(timer); reject(err instanceof Error ? err : new Error(String(err))); };
    server = new ServerSerial(vector, {
      path: serialPath, baudRate: opts.baudRate ?? 19200, unitID: 255,
      openCallback: (err) => { if (err) fail(err); },
    });
    server.on('initialized', () => { clearTimeout(timer); resolve(); });
    server.on('error', fail);
  });
  const opened = server!;
  return {
    serialPath, ...registers,
    close: () => new Promise<void>((resolve) => opened.close(() => resolve())),
  };
}
