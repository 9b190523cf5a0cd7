import { createServer } from 'node:net';
import { ServerTCP } from 'modbus-serial';

/**
 * A real Modbus TCP slave (modbus-serial's ServerTCP) on 127.0.0.1 for tests and demos; its
 * registers are plain arrays the caller can inspect and change.
 */
export interface ModbusTestServer {
  port: number;
  holding: number[];
  input: number[];
  coils: boolean[];
  discrete: boolean[];
  close(): Promise<void>;
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
  const size = opts.size ?? 128;
  const holding = new Array<number>(size).fill(0);
  const input = new Array<number>(size).fill(0);
  const coils = new Array<boolean>(size).fill(false);
  const discrete = new Array<boolean>(size).fill(false);
  const check = (addr: number) => {
    if (addr < 0 || addr >= size) throw Object.assign(new Error('illegal data address'), { modbusErrorCode: 0x02 });
  };
  const vector = {
    getHoldingRegister: (addr: number) => { check(addr); return holding[addr]!; },
    getInputRegister: (addr: number) => { check(addr); return input[addr]!; },
    getCoil: (addr: number) => { check(addr); return coils[addr]!; },
    getDiscreteInput: (addr: number) => { check(addr); return discrete[addr]!; },
    setRegister: (addr: number, value: number) => { check(addr); holding[addr] = value; },
    setCoil: (addr: number, value: boolean) => { check(addr); coils[addr] = value; },
  };
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
        port, holding, input, coils, discrete,
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }
    if (attempt >= 5) throw ready;
  }
}
