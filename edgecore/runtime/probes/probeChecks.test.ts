import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProbeSchema } from '../../../protocol/index.js';
import { runExec } from '../processExec.js';
import { execCheck, httpGetCheck, runProbeCheck, tcpSocketCheck, type ProbeExecutor, type ProbeTarget } from './probeChecks.js';

const hostExec: ProbeExecutor = (command, timeoutMs) => runExec(command, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeoutMs, maxOutputBytes: 4_096 });
const hostTarget: ProbeTarget = { exec: hostExec };

/** Answers by path: /ok 200, /redirect 302, /fail 500; /hang never answers. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === '/hang') return;
  const status = req.url === '/ok' ? 200 : req.url === '/redirect' ? 302 : 500;
  res.writeHead(status, status === 302 ? { location: '/ok' } : {}).end('body');
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

async function close(server: net.Server): Promise<void> {
  if ('closeAllConnections' in server && typeof server.closeAllConnections === 'function') server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await close(server);
  return port;
}

describe('execCheck', () => {
  it('passes when the command exits 0', async () => {
    expect(await execCheck(hostExec, ['/bin/sh', '-c', 'exit 0'], 5_000)).toMatchObject({ success: true });
  });

  it('fails with the exit code and the start of the output', async () => {
    const result = await execCheck(hostExec, ['/bin/sh', '-c', 'echo not healthy; echo because >&2; exit 3'], 5_000);
    expect(result).toEqual({ success: false, reason: 'command ["/bin/sh","-c","echo not healthy; echo because >&2; exit 3"] exited with code 3: not healthy because' });
  });

  it('fails a command that runs past its timeout (and the executor kills it)', async () => {
    const started = Date.now();
    const result = await execCheck(hostExec, ['/bin/sh', '-c', 'sleep 30'], 300);
    expect(result.success).toBe(false);
    expect(result.reason).toMatch(/timed out after 300 ms$/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('fails a command that cannot start', async () => {
    const result = await execCheck(hostExec, ['/nonexistent/edgefleet-probe'], 5_000);
    expect(result.success).toBe(false);
    expect(result.reason).toMatch(/did not exit normally: cannot run \/nonexistent\/edgefleet-probe/);
  });

  it('gives up on an executor that never reports, and survives one that throws', async () => {
    const hung: ProbeExecutor = () => new Promise(() => {});
    expect(await execCheck(hung, ['x'], 100)).toEqual({ success: false, reason: 'command ["x"] timed out after 100 ms' });
    const broken: ProbeExecutor = () => Promise.reject(new Error('engine unreachable'));
    expect(await runProbeCheck(ProbeSchema.parse({ exec: { command: ['x'] } }), { exec: broken }, 1_000)).toEqual({ success: false, reason: 'engine unreachable' });
  });

  it('stops waiting when aborted', async () => {
    const abort = new AbortController();
    const pending = execCheck(() => new Promise(() => {}), ['x'], 30_000, abort.signal);
    abort.abort();
    expect(await pending).toEqual({ success: false, reason: 'probe stopped' });
  });
});

describe('httpGetCheck', () => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = http.createServer(handler);
    port = await listen(server);
  });
  afterAll(() => close(server));

  const get = (path: string, timeoutMs = 5_000, signal?: AbortSignal) => httpGetCheck({ host: '127.0.0.1', port, path, scheme: 'HTTP' }, timeoutMs, signal);

  it('passes on 2xx and 3xx, fails on other statuses', async () => {
    expect(await get('/ok')).toEqual({ success: true, reason: `HTTP GET http://127.0.0.1:${port}/ok: status 200` });
    expect(await get('/redirect')).toMatchObject({ success: true });
    expect(await get('/fail')).toEqual({ success: false, reason: `HTTP GET http://127.0.0.1:${port}/fail: status 500` });
  });

  it('fails when nothing answers in time, or nothing listens', async () => {
    expect(await get('/hang', 300)).toEqual({ success: false, reason: `HTTP GET http://127.0.0.1:${port}/hang: timed out after 300 ms` });
    const closed = await freePort();
    const refused = await httpGetCheck({ host: '127.0.0.1', port: closed, path: '/', scheme: 'HTTP' }, 5_000);
    expect(refused.success).toBe(false);
    expect(refused.reason).toMatch(/ECONNREFUSED/);
  });

  it('cancels an in-flight request when aborted', async () => {
    const abort = new AbortController();
    const pending = get('/hang', 30_000, abort.signal);
    setTimeout(() => abort.abort(), 50);
    expect(await pending).toEqual({ success: false, reason: 'probe stopped' });
  });

  it('reaches IPv6 loopback', async () => {
    const v6 = http.createServer(handler);
    try {
      await new Promise<void>((resolve, reject) => { v6.once('error', reject); v6.listen(0, '::1', resolve); });
    } catch {
      return; // no IPv6 loopback on this machine
    }
    try {
      const v6Port = (v6.address() as net.AddressInfo).port;
      expect(await httpGetCheck({ host: '::1', port: v6Port, path: '/ok', scheme: 'HTTP' }, 5_000)).toEqual({ success: true, reason: `HTTP GET http://[::1]:${v6Port}/ok: status 200` });
    } finally {
      await close(v6);
    }
  });
});

describe('httpGetCheck over HTTPS', () => {
  let dir: string;
  afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('accepts a self-signed certificate, as the kubelet does', async () => {
    dir = mkdtempSync(join(tmpdir(), 'probe-tls-'));
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=edgefleet-probe-test',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    if (made.status !== 0) return; // no openssl here: nothing to serve TLS with
    const server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, handler);
    const port = await listen(server);
    try {
      expect(await httpGetCheck({ host: '127.0.0.1', port, path: '/ok', scheme: 'HTTPS' }, 5_000)).toEqual({ success: true, reason: `HTTP GET https://127.0.0.1:${port}/ok: status 200` });
      expect(await httpGetCheck({ host: '127.0.0.1', port, path: '/fail', scheme: 'HTTPS' }, 5_000)).toMatchObject({ success: false });
    } finally {
      await close(server);
    }
  });
});

describe('tcpSocketCheck', () => {
  it('passes when a connection is accepted, and closes it', async () => {
    let connections = 0;
    let closedByProbe = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.on('close', () => { closedByProbe++; });
    });
    const port = await listen(server);
    try {
      expect(await tcpSocketCheck({ host: '127.0.0.1', port }, 5_000)).toEqual({ success: true, reason: `TCP connect to 127.0.0.1:${port}: connected` });
      const deadline = Date.now() + 5_000;
      while (closedByProbe < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect([connections, closedByProbe]).toEqual([1, 1]);
    } finally {
      await close(server);
    }
  });

  it('fails when nothing listens', async () => {
    const port = await freePort();
    const result = await tcpSocketCheck({ host: '127.0.0.1', port }, 5_000);
    expect(result.success).toBe(false);
    expect(result.reason).toMatch(new RegExp(`^TCP connect to 127.0.0.1:${port}: .*ECONNREFUSED`));
  });
});

describe('runProbeCheck', () => {
  it('runs the kind the probe defines, through the target endpoint mapping', async () => {
    const server = http.createServer(handler);
    const port = await listen(server);
    try {
      // The probe names a port inside "the workload"; the target maps it to where it is reachable.
      const mapped: ProbeTarget = { exec: hostExec, resolveEndpoint: ({ port: inner }) => ({ host: '127.0.0.1', port: inner === 80 ? port : 1 }) };
      expect(await runProbeCheck(ProbeSchema.parse({ httpGet: { port: 80, path: '/ok', host: '10.0.0.5' } }), mapped, 5_000)).toMatchObject({ success: true });
      expect(await runProbeCheck(ProbeSchema.parse({ tcpSocket: { port: 80 } }), mapped, 5_000)).toMatchObject({ success: true });
      expect(await runProbeCheck(ProbeSchema.parse({ tcpSocket: { port } }), hostTarget, 5_000)).toMatchObject({ success: true });
      expect(await runProbeCheck(ProbeSchema.parse({ exec: { command: ['/bin/sh', '-c', 'exit 1'] } }), hostTarget, 5_000)).toMatchObject({ success: false });
    } finally {
      await close(server);
    }
  });
});
