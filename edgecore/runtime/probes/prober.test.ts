import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProbeSchema } from '../../../protocol/index.js';
import { runExec } from '../processExec.js';
import { pollUntil } from '../processGroup.js';
import type { ProbeCheckResult, ProbeExecutor, ProbeTarget } from './probeChecks.js';
import { Prober, type ProbeTransitionEvent } from './prober.js';
import { initialReadiness, livenessFailureMessage, startRunProbes } from './runProbes.js';

const DEADLINE_MS = 20_000;
const hostExec: ProbeExecutor = (command, timeoutMs) => runExec(command, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeoutMs, maxOutputBytes: 4_096 });
const target: ProbeTarget = { exec: hostExec };

let dir: string;
let probers: Prober[];
let servers: net.Server[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'prober-'));
  probers = [];
  servers = [];
});

afterEach(async () => {
  for (const prober of probers) prober.stop();
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close(() => resolve());
  })));
  rmSync(dir, { recursive: true, force: true });
});

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  if (!(await pollUntil(condition, DEADLINE_MS))) throw new Error(`timed out waiting for ${what}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP server on 127.0.0.1 that can stop and start listening on the same port. */
async function toggleableServer(): Promise<{ port: number; up: () => Promise<void>; down: () => Promise<void> }> {
  let server = net.createServer((socket) => socket.destroy());
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    down: () => new Promise<void>((resolve) => server.close(() => resolve())),
    up: async () => {
      server = net.createServer((socket) => socket.destroy());
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
  };
}

function track(prober: Prober): Prober {
  probers.push(prober);
  return prober.start();
}

describe('Prober', () => {
  it('readiness starts unhealthy and follows a TCP port going up, down and up', async () => {
    const server = await toggleableServer();
    const transitions: ProbeTransitionEvent[] = [];
    const prober = track(new Prober({
      probe: ProbeSchema.parse({ tcpSocket: { port: server.port }, periodSeconds: 1, failureThreshold: 1 }),
      target, initialHealth: 'unhealthy', onTransition: (event) => transitions.push(event),
    }));
    expect(prober.health).toBe('unhealthy');
    await waitFor('healthy', () => transitions.length === 1);
    expect(transitions[0]).toEqual({ health: 'healthy', reason: `TCP connect to 127.0.0.1:${server.port}: connected` });
    await server.down();
    await waitFor('unhealthy', () => transitions.length === 2);
    expect(transitions[1]!.health).toBe('unhealthy');
    expect(transitions[1]!.reason).toMatch(/ECONNREFUSED/);
    expect(prober.health).toBe('unhealthy');
    await server.up();
    await waitFor('healthy again', () => transitions.length === 3);
    expect(transitions[2]!.health).toBe('healthy');
  });

  it('liveness turns unhealthy only after failureThreshold failed exec checks', async () => {
    const marker = join(dir, 'alive');
    writeFileSync(marker, '');
    const results: ProbeCheckResult[] = [];
    const transitions: ProbeTransitionEvent[] = [];
    let resultsAtTransition: ProbeCheckResult[] = [];
    track(new Prober({
      probe: ProbeSchema.parse({ exec: { command: ['/bin/sh', '-c', `test -f ${marker}`] }, periodSeconds: 1, failureThreshold: 2 }),
      target, initialHealth: 'healthy',
      onResult: (result) => results.push(result),
      onTransition: (event) => { transitions.push(event); resultsAtTransition = [...results]; },
    }));
    await waitFor('a passing check', () => results.length >= 1);
    expect(results[0]!.success).toBe(true);
    rmSync(marker);
    await waitFor('unhealthy', () => transitions.length === 1);
    const failures = resultsAtTransition.filter((r) => !r.success);
    expect(failures).toHaveLength(2);
    expect(transitions[0]).toEqual({ health: 'unhealthy', reason: failures[1]!.reason });
    expect(transitions[0]!.reason).toMatch(/exited with code 1$/);
  });

  it('waits the initial delay before the first check', async () => {
    const startedMs = Date.now();
    let firstResultMs = 0;
    track(new Prober({
      probe: ProbeSchema.parse({ exec: { command: ['/bin/sh', '-c', 'exit 0'] }, initialDelaySeconds: 1 }),
      target, initialHealth: 'healthy', onTransition: () => {},
      onResult: () => { firstResultMs ||= Date.now(); },
    }));
    await waitFor('the first check', () => firstResultMs > 0);
    expect(firstResultMs - startedMs).toBeGreaterThanOrEqual(990);
  });

  it('stop() ends checking and cancels an in-flight HTTP check without reporting it', async () => {
    let requests = 0;
    let closedRequests = 0;
    const server = http.createServer((req) => {
      requests++;
      req.socket.on('close', () => { closedRequests++; });
      // Never answers: the check stays in flight until its (long) timeout or stop().
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const results: ProbeCheckResult[] = [];
    const prober = track(new Prober({
      probe: ProbeSchema.parse({ httpGet: { port, path: '/healthz' }, periodSeconds: 1, timeoutSeconds: 30 }),
      target, initialHealth: 'healthy', onTransition: () => {}, onResult: (r) => results.push(r),
    }));
    await waitFor('the request to arrive', () => requests === 1);
    expect(prober.active).toBe(true);
    prober.stop();
    expect(prober.active).toBe(false);
    await waitFor('the probe connection to close', () => closedRequests === 1);
    await sleep(1_500); // longer than a period: no further check may start
    expect(requests).toBe(1);
    expect(results).toEqual([]);
  });

  it('keeps running when a callback throws', async () => {
    const errors: unknown[] = [];
    let results = 0;
    track(new Prober({
      probe: ProbeSchema.parse({ exec: { command: ['/bin/sh', '-c', 'exit 0'] }, periodSeconds: 1 }),
      target, initialHealth: 'unhealthy',
      onTransition: () => { throw new Error('listener broke'); },
      onResult: () => { results++; },
      onCallbackError: (err) => errors.push(err),
    }));
    await waitFor('two checks', () => results >= 2);
    expect(errors).toHaveLength(1);
  });
});

describe('startRunProbes', () => {
  it('reports readiness changes and one liveness failure, then stops both probers', async () => {
    const server = await toggleableServer();
    const marker = join(dir, 'alive');
    writeFileSync(marker, '');
    const ready: boolean[] = [];
    const livenessFailures: string[] = [];
    const probes = {
      liveness: ProbeSchema.parse({ exec: { command: ['/bin/sh', '-c', `test -f ${marker}`] }, periodSeconds: 1, failureThreshold: 1 }),
      readiness: ProbeSchema.parse({ tcpSocket: { port: server.port }, periodSeconds: 1, failureThreshold: 1 }),
    };
    expect(initialReadiness(probes)).toBe(false);
    expect(initialReadiness({ liveness: probes.liveness })).toBeNull();
    const run = startRunProbes(probes, target, {
      onReadyChange: (value) => ready.push(value),
      onLivenessFailure: (reason) => livenessFailures.push(reason),
    });
    try {
      await waitFor('ready', () => ready.length === 1);
      expect(ready).toEqual([true]);
      rmSync(marker);
      await waitFor('the liveness failure', () => livenessFailures.length === 1);
      expect(livenessFailureMessage(livenessFailures[0]!)).toMatch(/^liveness probe failed: command .* exited with code 1$/);
      await server.down(); // readiness would flip now, but the failed run's probers have stopped
      await sleep(2_500);
      expect(ready).toEqual([true]);
      expect(livenessFailures).toHaveLength(1);
      expect(existsSync(marker)).toBe(false);
    } finally {
      run.stop();
    }
  });
});
