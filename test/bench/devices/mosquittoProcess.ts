import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Debian's mosquitto as the reference broker: 127.0.0.1 only, anonymous, no persistence. */

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export interface MosquittoProcess {
  pid: number;
  port: number;
  configPath: string;
  logTail(lines?: number): string;
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * The reference configuration. Outgoing QoS 1 limits are raised so mosquitto's defaults (20 in
 * flight, 1000 queued, then drop) do not throttle or drop what its single subscriber gets: the
 * hub has no such limit on its side either, it consumes the reports in-process.
 */
export function mosquittoConfig(port: number, logPath: string): string {
  return [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'max_inflight_messages 1000',
    'max_queued_messages 1000000',
    'log_dest file ' + logPath,
    'log_type error',
    'log_type warning',
    '',
  ].join('\n');
}

/** A free TCP port on 127.0.0.1 (bound and released; mosquitto cannot be told to pick one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => { socket.destroy(); resolve(false); });
  });
}

export async function startMosquitto(dir: string, readyTimeoutMs = 10_000): Promise<MosquittoProcess> {
  const port = await freePort();
  const configPath = join(dir, 'mosquitto.conf');
  const logPath = join(dir, 'mosquitto.log');
  writeFileSync(configPath, mosquittoConfig(port, logPath));
  const outFd = openSync(join(dir, 'mosquitto.out'), 'a');
  let child: ChildProcess;
  try {
    child = spawn(MOSQUITTO_BIN, ['-c', configPath], { stdio: ['ignore', outFd, outFd] });
  } finally {
    closeSync(outFd);
  }
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => { exitCode = code ?? (signal ? -1 : null); resolve(exitCode); });
  });
  child.once('error', () => {});
  const logTail = (lines = 20) => {
    const read = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return ''; } };
    return `${read(join(dir, 'mosquitto.out'))}${read(logPath)}`.trimEnd().split('\n').slice(-lines).join('\n');
  };
  const stop = async (graceMs = 5000): Promise<number | null> => {
    if (exitCode !== undefined) return exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const deadline = Date.now() + readyTimeoutMs;
  while (!(await canConnect(port))) {
    if (exitCode !== undefined) throw new Error(`mosquitto exited (code ${exitCode}):\n${logTail()}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`mosquitto not listening on ${port} within ${readyTimeoutMs} ms:\n${logTail()}`);
    }
    await sleep(50);
  }
  return { pid: child.pid!, port, configPath, logTail, stop };
}
