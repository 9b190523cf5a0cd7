import { connect as netConnect, type Socket } from 'node:net';
import { generate, parser } from 'mqtt-packet';

/** MQTT over a raw socket, for attacks a well-behaved client library will not make. */

export interface RawConnect {
  port: number;
  /** The 127.0.0.x address to connect from (the broker tells clients apart by address). */
  from?: string;
  clientId: string;
  username?: string;
  password?: string;
  clean?: boolean;
}

/** Opens a socket from `from` to the broker on 127.0.0.1. */
export function openSocket(port: number, from = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port, localAddress: from }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Sends a CONNECT and resolves with the CONNACK's return code, or 'closed' when the broker
 * closed the socket without one. Returns the socket open when accepted (the caller ends it).
 */
export async function rawConnect(opts: RawConnect, timeoutMs = 20_000): Promise<{ code: number | 'closed'; socket: Socket }> {
  const socket = await openSocket(opts.port, opts.from);
  socket.on('error', () => undefined);
  const packets = parser();
  const code = new Promise<number | 'closed'>((resolve) => {
    const timer = setTimeout(() => { socket.destroy(); resolve('closed'); }, timeoutMs);
    packets.on('packet', (packet) => {
      if (packet.cmd !== 'connack') return;
      clearTimeout(timer);
      resolve(packet.returnCode ?? 0);
    });
    socket.on('data', (chunk: Buffer) => packets.parse(chunk));
    socket.once('close', () => { clearTimeout(timer); resolve('closed'); });
  });
  socket.write(generate({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: opts.clientId, clean: opts.clean ?? true, keepalive: 60,
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: Buffer.from(opts.password) } : {}),
  }));
  return { code: await code, socket };
}

/** Resident memory of a process in bytes (Linux /proc). */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const match = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}
