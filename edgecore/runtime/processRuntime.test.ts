import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProcessTemplate, WorkloadStatus } from '../../protocol/index.js';
import { isLive, pollUntil, readStartTicks } from './processGroup.js';
import { ProcessRuntime, type ProcessRuntimeOptions } from './processRuntime.js';
import type { RecordKeeper, WorkloadRecord } from './runtime.js';

/** The runtime's own persistence interface, kept in memory (edgecore backs it with SQLite). */
class MemoryRecords implements RecordKeeper {
  readonly byName = new Map<string, WorkloadRecord>();
  save(record: WorkloadRecord): void { this.byName.set(record.name, structuredClone(record)); }
  remove(name: string): void { this.byName.delete(name); }
  load(): WorkloadRecord[] { return [...this.byName.values()].map((r) => structuredClone(r)); }
}

const SH = '/bin/sh';
const FAST_BACKOFF = { initialMs: 100, maxMs: 2_000, resetAfterMs: 60_000 };
const DEADLINE_MS = 20_000;

let dir: string;
let records: MemoryRecords;
let runtimes: ProcessRuntime[];
let strayPids: number[];
let events: Array<{ name: string; status: WorkloadStatus }>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'procrt-'));
  records = new MemoryRecords();
  runtimes = [];
  strayPids = [];
  events = [];
});

afterEach(async () => {
  await Promise.all(runtimes.map((rt) => rt.shutdown({ stopWorkloads: true })));
  for (const pid of strayPids) if (isLive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function newRuntime(opts: Partial<ProcessRuntimeOptions> = {}): ProcessRuntime {
  const rt = new ProcessRuntime({ logDir: join(dir, 'logs'), records, backoff: FAST_BACKOFF, stopGraceMs: 1_000, ...opts });
  rt.onStatus((name, status) => events.push({ name, status }));
  runtimes.push(rt);
  return rt;
}

function proc(command: string, args: string[], extra: Partial<ProcessTemplate> = {}): ProcessTemplate {
  return { runtime: 'process', command, args, env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [], ...extra };
}

const shell = (script: string, extra: Partial<ProcessTemplate> = {}): ProcessTemplate => proc(SH, ['-c', script], extra);

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  if (!(await pollUntil(condition, DEADLINE_MS))) throw new Error(`timed out waiting for ${what}`);
}

async function waitForAsync(what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function waitForStatus(rt: ProcessRuntime, name: string, test: (s: WorkloadStatus) => boolean): Promise<WorkloadStatus> {
  let found: WorkloadStatus | undefined;
  await waitFor(`status of ${name}`, () => {
    const status = rt.statuses().get(name);
    if (status && test(status)) found = status;
    return found !== undefined;
  });
  return found!;
}

function statesOf(name: string): string[] {
  return events.filter((e) => e.name === name).map((e) => e.status.state);
}

function readPidFile(path: string): number {
  return Number(readFileSync(path, 'utf8').trim());
}

/** Starts a process outside any runtime that outlives its parent, as a dead edgecore's workload. */
function spawnOrphan(script: string): number {
  const launcher = `const c = require('child_process').spawn('/bin/sh', ['-c', ${JSON.stringify(script)}], { detached: true, stdio: 'ignore' }); c.unref(); console.log(c.pid);`;
  const result = spawnSync(process.execPath, ['-e', launcher], { encoding: 'utf8' });
  const pid = Number(result.stdout.trim());
  expect(pid).toBeGreaterThan(1);
  strayPids.push(pid);
  return pid;
}

describe('ProcessRuntime', () => {
  it('starts a workload, reports Running with its pid, and records pid + start ticks', async () => {
    const rt = newRuntime();
    await rt.ensure({ name: 'idle', generation: 1, template: proc(process.execPath, ['-e', 'setInterval(() => {}, 1000)']) });
    const status = await waitForStatus(rt, 'idle', (s) => s.state === 'Running');
    expect(status.pid).toBeGreaterThan(0);
    expect(status.generation).toBe(1);
    expect(status.restarts).toBe(0);
    expect(isLive(status.pid!)).toBe(true);
    const record = records.byName.get('idle')!;
    expect(record.pid).toBe(status.pid);
    expect(record.startTicks).toBe(readStartTicks(status.pid!));
    expect(statesOf('idle')).toEqual(['Pending', 'Running']);
  });

  it('honours args, env and workingDir, and does not leak edgecore-only environment', async () => {
    process.env.EDGEFLEET_TEST_SECRET = 'leak';
    try {
      const rt = newRuntime();
      const script = 'printf "%s %s|%s|%s\\n" "$GREETING" "$1" "$(pwd)" "${EDGEFLEET_TEST_SECRET:-unset}" > out.txt';
      await rt.ensure({ name: 'env', generation: 1, template: proc(SH, ['-c', script, 'sh', 'world'], { env: { GREETING: 'hello' }, workingDir: dir, restartPolicy: 'Never', probes: {}, configs: [], secrets: [] }) });
      const status = await waitForStatus(rt, 'env', (s) => s.state === 'Exited');
      expect(status.exitCode).toBe(0);
      expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe(`hello world|${dir}|unset\n`);
    } finally {
      delete process.env.EDGEFLEET_TEST_SECRET;
    }
  });

  it('restarts under Always with doubling back-off, reporting Exited then CrashLoop', async () => {
    const rt = newRuntime({ backoff: { initialMs: 200, maxMs: 5_000, resetAfterMs: 60_000 } });
    await rt.ensure({ name: 'crasher', generation: 1, template: shell('echo attempt; exit 3') });
    await waitForStatus(rt, 'crasher', (s) => s.restarts >= 3 && s.state !== 'Running');
    const mine = events.filter((e) => e.name === 'crasher').map((e) => e.status);
    const exits = mine.filter((s) => s.state === 'Exited' || s.state === 'CrashLoop');
    expect(exits[0]!.state).toBe('Exited');
    expect(exits.slice(1).every((s) => s.state === 'CrashLoop')).toBe(true);
    expect(exits[0]!.lastError).toBe('exited with code 3');
    expect(exits[0]!.exitCode).toBe(3);
    // Each restart waits at least the back-off: 200, 400, 800 ms (lower bounds only, never flaky).
    const starts = mine.filter((s) => s.state === 'Running');
    for (let k = 1; k <= 3; k++) {
      expect(starts[k]!.restarts).toBe(k);
      const gap = Date.parse(starts[k]!.startedAt!) - Date.parse(exits[k - 1]!.finishedAt!);
      expect(gap).toBeGreaterThanOrEqual(200 * 2 ** (k - 1) - 10);
    }
    expect((await rt.readLogs('crasher', 10)).filter((l) => l === 'attempt').length).toBeGreaterThanOrEqual(3);
  });

  it('OnFailure restarts a failing process but not one that exits 0', async () => {
    const rt = newRuntime();
    await rt.ensure({ name: 'ok', generation: 1, template: shell('exit 0', { restartPolicy: 'OnFailure' }) });
    await rt.ensure({ name: 'bad', generation: 1, template: shell('exit 1', { restartPolicy: 'OnFailure' }) });
    await waitForStatus(rt, 'bad', (s) => s.restarts >= 2);
    const ok = rt.statuses().get('ok')!;
    expect(ok).toMatchObject({ state: 'Exited', exitCode: 0, restarts: 0 });
    expect(ok.lastError ?? null).toBeNull();
    expect(statesOf('ok')).toEqual(['Pending', 'Running', 'Exited']);
  });

  it('Never leaves a failed process Failed', async () => {
    const rt = newRuntime();
    await rt.ensure({ name: 'once', generation: 1, template: shell('exit 7', { restartPolicy: 'Never', probes: {}, configs: [], secrets: [] }) });
    await rt.ensure({ name: 'marker', generation: 1, template: shell('exit 1', { restartPolicy: 'Always', probes: {}, configs: [], secrets: [] }) });
    await waitForStatus(rt, 'marker', (s) => s.restarts >= 2); // several back-off periods have passed
    expect(rt.statuses().get('once')).toMatchObject({ state: 'Failed', exitCode: 7, restarts: 0, lastError: 'exited with code 7' });
    expect(statesOf('once')).toEqual(['Pending', 'Running', 'Failed']);
  });

  it('reports a missing command as Failed with a clear lastError, retried under Always', async () => {
    const rt = newRuntime();
    await rt.ensure({ name: 'nocmd', generation: 1, template: proc('/nonexistent/edgefleet-no-such-command', []) });
    await rt.ensure({ name: 'nocmd-never', generation: 1, template: proc('edgefleet-no-such-command', [], { restartPolicy: 'Never', probes: {}, configs: [], secrets: [] }) });
    await rt.ensure({ name: 'nodir', generation: 1, template: proc(SH, ['-c', 'true'], { workingDir: join(dir, 'missing'), restartPolicy: 'Never', probes: {}, configs: [], secrets: [] }) });
    const retried = await waitForStatus(rt, 'nocmd', (s) => s.restarts >= 2);
    expect(retried.state).toBe('Failed');
    expect(retried.lastError).toMatch(/^command not found: "\/nonexistent\/edgefleet-no-such-command"/);
    const never = await waitForStatus(rt, 'nocmd-never', (s) => s.state === 'Failed');
    expect(never.restarts).toBe(0);
    expect(never.lastError).toMatch(/command not found: "edgefleet-no-such-command".*ENOENT/);
    const nodir = await waitForStatus(rt, 'nodir', (s) => s.state === 'Failed');
    expect(nodir.lastError).toBe(`workingDir "${join(dir, 'missing')}" does not exist`);
  });

  it('replaces the process on a new generation or template, and is a no-op otherwise', async () => {
    const rt = newRuntime();
    const template = proc(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env: { A: '1', B: '2' } });
    await rt.ensure({ name: 'svc', generation: 1, template });
    const first = await waitForStatus(rt, 'svc', (s) => s.state === 'Running');

    const before = events.length;
    await rt.ensure({ name: 'svc', generation: 1, template: { ...template, env: { B: '2', A: '1' } } });
    expect(events.length).toBe(before);
    expect(rt.statuses().get('svc')!.pid).toBe(first.pid);

    await rt.ensure({ name: 'svc', generation: 2, template });
    const second = await waitForStatus(rt, 'svc', (s) => s.state === 'Running' && s.generation === 2);
    expect(second.pid).not.toBe(first.pid);
    expect(second.restarts).toBe(0);
    await waitFor('old process to be gone', () => !isLive(first.pid!));

    await rt.ensure({ name: 'svc', generation: 2, template: { ...template, args: ['-e', 'setInterval(() => {}, 999)'] } });
    const third = await waitForStatus(rt, 'svc', (s) => s.state === 'Running' && s.pid !== second.pid);
    expect(third.generation).toBe(2);
    await waitFor('second process to be gone', () => !isLive(second.pid!));
  });

  it('remove kills the whole process group, even a grandchild that ignores SIGTERM', async () => {
    const rt = newRuntime();
    const script = [
      `sleep 300 & echo $! > ${dir}/plain.pid`,
      `sh -c "trap '' TERM; exec sleep 300" & echo $! > ${dir}/stubborn.pid`,
      'echo started; wait',
    ].join('\n');
    await rt.ensure({ name: 'tree', generation: 1, template: shell(script) });
    const status = await waitForStatus(rt, 'tree', (s) => s.state === 'Running');
    await waitFor('pid files', () => existsSync(join(dir, 'plain.pid')) && existsSync(join(dir, 'stubborn.pid'))
      && statSync(join(dir, 'stubborn.pid')).size > 0 && statSync(join(dir, 'plain.pid')).size > 0);
    const grandchildren = [readPidFile(join(dir, 'plain.pid')), readPidFile(join(dir, 'stubborn.pid'))];
    strayPids.push(...grandchildren);
    expect(grandchildren.every((pid) => isLive(pid))).toBe(true);

    await rt.remove('tree');
    await waitFor('the whole group to be gone', () => [status.pid!, ...grandchildren].every((pid) => !isLive(pid)));
    expect(rt.statuses().has('tree')).toBe(false);
    expect(records.byName.has('tree')).toBe(false);
    expect(events.at(-1)).toMatchObject({ name: 'tree', status: { state: 'Stopped', pid: null } });
    expect(await rt.readLogs('tree', 10)).toEqual([]);
    await rt.remove('tree'); // idempotent
  });

  it('kills what an exited process left in its group', async () => {
    const rt = newRuntime();
    await rt.ensure({ name: 'leaver', generation: 1, template: shell(`sleep 300 & echo $! > ${dir}/left.pid; exit 0`, { restartPolicy: 'Never', probes: {}, configs: [], secrets: [] }) });
    await waitForStatus(rt, 'leaver', (s) => s.state === 'Exited');
    const left = readPidFile(join(dir, 'left.pid'));
    strayPids.push(left);
    await waitFor('the leftover to be gone', () => !isLive(left));
  });

  it('logs stdout and stderr lines', async () => {
    const rt = newRuntime();
    await rt.ensure({ name: 'both', generation: 1, template: shell('echo to-stdout; echo to-stderr >&2; printf unterminated', { restartPolicy: 'Never', probes: {}, configs: [], secrets: [] }) });
    await waitForAsync('both streams in the log', async () => (await rt.readLogs('both', 10)).length === 3);
    expect((await rt.readLogs('both', 10)).sort()).toEqual(['to-stderr', 'to-stdout', 'unterminated']);
  });

  it('caps the log file and returns its tail', async () => {
    const rt = newRuntime({ logMaxBytes: 2_000 });
    const program = "for (let i = 0; i < 1000; i++) console.log('line-' + i);";
    await rt.ensure({ name: 'chatty', generation: 1, template: proc(process.execPath, ['-e', program], { restartPolicy: 'Never', probes: {}, configs: [], secrets: [] }) });
    await waitForStatus(rt, 'chatty', (s) => s.state === 'Exited');
    await waitForAsync('all output in the log', async () => (await rt.readLogs('chatty', 1)).includes('line-999'));
    const current = statSync(join(dir, 'logs', 'chatty.log')).size;
    const old = statSync(join(dir, 'logs', 'chatty.log.1')).size;
    expect(current).toBeLessThanOrEqual(2_000);
    expect(current + old).toBeLessThanOrEqual(4_000);
    const stdoutTail = await rt.readLogs('chatty', 1_000);
    expect(stdoutTail.length).toBeLessThan(1_000);
    expect(stdoutTail.at(-1)).toBe('line-999');
    // Whatever was kept is contiguous and in order.
    const numbers = stdoutTail.map((l) => Number(l.slice(5)));
    expect(numbers).toEqual(numbers.map((_, k) => numbers[0]! + k));
    expect(await rt.readLogs('chatty', 3)).toHaveLength(3);
  });

  it('shutdown stops running and backing-off workloads and refuses new work', async () => {
    const rt = newRuntime({ backoff: { initialMs: 300, maxMs: 300, resetAfterMs: 60_000 } });
    await rt.ensure({ name: 'up', generation: 1, template: proc(process.execPath, ['-e', 'setInterval(() => {}, 1000)']) });
    await rt.ensure({ name: 'down', generation: 1, template: shell('exit 1') });
    const up = await waitForStatus(rt, 'up', (s) => s.state === 'Running');
    await waitForStatus(rt, 'down', (s) => s.state === 'Exited');
    await rt.shutdown({ stopWorkloads: true });
    await waitFor('the running workload to be gone', () => !isLive(up.pid!));
    expect(rt.statuses().get('up')!.state).toBe('Stopped');
    expect(rt.statuses().get('down')!.state).toBe('Stopped');
    expect(records.byName.get('up')).toMatchObject({ pid: null, startTicks: null, status: { state: 'Stopped' } });
    const count = events.length;
    await new Promise((resolve) => setTimeout(resolve, 600)); // past the back-off: no restart may happen
    expect(events.length).toBe(count);
    await expect(rt.ensure({ name: 'late', generation: 1, template: shell('true') })).rejects.toThrow(/shut down/);
  });
});

describe('ProcessRuntime.recover', () => {
  it('kills the process group of a workload left by a previous edgecore and forgets its record', async () => {
    const orphan = spawnOrphan(`sleep 300 & echo $! > ${dir}/orphan-child.pid; wait`);
    await waitFor('orphan child pid', () => existsSync(join(dir, 'orphan-child.pid')) && statSync(join(dir, 'orphan-child.pid')).size > 0);
    const orphanChild = readPidFile(join(dir, 'orphan-child.pid'));
    strayPids.push(orphanChild);
    const startTicks = readStartTicks(orphan);
    expect(startTicks).not.toBeNull();
    records.save({ name: 'old', pid: orphan, startTicks, status: { state: 'Running', restarts: 0, generation: 1, observedAt: new Date().toISOString(), pid: orphan } });

    const rt = newRuntime();
    await rt.recover();
    await waitFor('the orphan group to be gone', () => !isLive(orphan) && !isLive(orphanChild));
    expect(records.byName.has('old')).toBe(false);

    await rt.ensure({ name: 'old', generation: 1, template: proc(process.execPath, ['-e', 'setInterval(() => {}, 1000)']) });
    const fresh = await waitForStatus(rt, 'old', (s) => s.state === 'Running');
    expect(records.byName.get('old')!.pid).toBe(fresh.pid);
  });

  it('never touches a live process whose start ticks differ (pid reused)', async () => {
    const stranger = spawnOrphan('exec sleep 300');
    await waitFor('stranger to run', () => isLive(stranger));
    const startTicks = readStartTicks(stranger)!;
    records.save({ name: 'reused', pid: stranger, startTicks: startTicks + 1, status: { state: 'Running', restarts: 0, generation: 3, observedAt: new Date().toISOString() } });
    records.save({ name: 'dead', pid: 999_999_999, startTicks: 1, status: { state: 'Running', restarts: 0, generation: 1, observedAt: new Date().toISOString() } });

    const rt = newRuntime({ stopGraceMs: 200 });
    await rt.recover();
    await new Promise((resolve) => setTimeout(resolve, 400)); // longer than the grace a kill would use
    expect(isLive(stranger, startTicks)).toBe(true);
    expect(records.load()).toEqual([]);
  });
});

describe('ProcessRuntime probes', () => {
  /** A port nothing listens on right now (bound, then released), for a workload to serve on. */
  async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }

  const node = (program: string, extra: Partial<ProcessTemplate>): ProcessTemplate => proc(process.execPath, ['-e', program], { workingDir: dir, ...extra });
  const fast = { periodSeconds: 1, timeoutSeconds: 1, initialDelaySeconds: 0, failureThreshold: 1, successThreshold: 1 };

  it('restarts a workload whose exec liveness probe starts failing (the probe runs with its env and cwd)', async () => {
    writeFileSync(join(dir, 'alive'), '');
    const rt = newRuntime();
    const liveness = { ...fast, timeoutSeconds: 5, exec: { command: [SH, '-c', 'test -f "$MARKER"'] } };
    await rt.ensure({ name: 'live', generation: 1, template: node('setInterval(() => {}, 1000)', { env: { MARKER: 'alive' }, probes: { liveness } }) });
    const first = await waitForStatus(rt, 'live', (s) => s.state === 'Running');
    expect(first.ready).toBeNull(); // no readiness probe
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // a passing check or two: no restart
    expect(rt.statuses().get('live')).toMatchObject({ state: 'Running', pid: first.pid, restarts: 0 });

    rmSync(join(dir, 'alive'));
    const second = await waitForStatus(rt, 'live', (s) => s.state === 'Running' && s.restarts >= 1);
    expect(second.pid).not.toBe(first.pid);
    expect(second.lastError).toBe('liveness probe failed: command ["/bin/sh","-c","test -f \\"$MARKER\\""] exited with code 1');
    expect(events.find((e) => e.name === 'live' && e.status.state === 'Exited')?.status).toMatchObject({ signal: 'SIGTERM', lastError: second.lastError });
    await waitFor('the old process to be gone', () => !isLive(first.pid!));
  });

  it('a failed liveness probe under restartPolicy Never leaves the workload Failed', async () => {
    const rt = newRuntime();
    const liveness = { ...fast, exec: { command: ['false'] } };
    await rt.ensure({ name: 'doomed', generation: 1, template: node('setInterval(() => {}, 1000)', { restartPolicy: 'Never', probes: { liveness } }) });
    const failed = await waitForStatus(rt, 'doomed', (s) => s.state === 'Failed');
    expect(failed).toMatchObject({ restarts: 0, pid: null, signal: 'SIGTERM', lastError: 'liveness probe failed: command ["false"] exited with code 1' });
  });

  it('keeps a workload that answers its HTTP liveness probe, and restarts it when it stops answering', async () => {
    const port = await freePort();
    // Logs each probe request with its pid; once a "hang" file appears it takes it and stops answering.
    const program = `let hang = false; const fs = require('fs');
      require('http').createServer((req, res) => {
        console.log('probe', req.url, process.pid);
        if (!hang && fs.existsSync('hang')) { hang = true; fs.unlinkSync('hang'); }
        if (!hang) res.end('ok');
      }).listen(${port}, '127.0.0.1');`;
    const liveness = { ...fast, initialDelaySeconds: 1, failureThreshold: 2, httpGet: { port, path: '/healthz', host: '127.0.0.1', scheme: 'HTTP' as const } };
    const rt = newRuntime();
    await rt.ensure({ name: 'web', generation: 1, template: node(program, { probes: { liveness } }) });
    const first = await waitForStatus(rt, 'web', (s) => s.state === 'Running');
    const probedBy = async (pid: number): Promise<number> => (await rt.readLogs('web', 1_000)).filter((l) => l === `probe /healthz ${pid}`).length;
    await waitForAsync('three answered probes', async () => (await probedBy(first.pid!)) >= 3);
    expect(rt.statuses().get('web')).toMatchObject({ state: 'Running', pid: first.pid, restarts: 0 });

    writeFileSync(join(dir, 'hang'), '');
    const second = await waitForStatus(rt, 'web', (s) => s.state === 'Running' && s.restarts === 1);
    expect(second.pid).not.toBe(first.pid);
    expect(second.lastError).toBe(`liveness probe failed: HTTP GET http://127.0.0.1:${port}/healthz: timed out after 1000 ms`);
    await waitForAsync('three answered probes of the new process', async () => (await probedBy(second.pid!)) >= 3);
    expect(rt.statuses().get('web')).toMatchObject({ state: 'Running', pid: second.pid, restarts: 1 });
  });

  it('reports readiness from a TCP probe: false until the port opens, then following it', async () => {
    const port = await freePort();
    // Listens while a "ready" file exists.
    const program = `const fs = require('fs'); let server = null;
      setInterval(() => {
        const want = fs.existsSync('ready');
        if (want && !server) server = require('net').createServer((s) => s.destroy()).listen(${port}, '127.0.0.1');
        else if (!want && server) { server.close(); server = null; }
      }, 50);`;
    const readiness = { ...fast, tcpSocket: { port, host: '127.0.0.1' } };
    const rt = newRuntime();
    await rt.ensure({ name: 'svc', generation: 1, template: node(program, { probes: { readiness } }) });
    expect(events.find((e) => e.name === 'svc')!.status).toMatchObject({ state: 'Pending', ready: false });
    expect(await waitForStatus(rt, 'svc', (s) => s.state === 'Running')).toMatchObject({ ready: false });
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // failing checks: still not ready
    expect(rt.statuses().get('svc')!.ready).toBe(false);

    writeFileSync(join(dir, 'ready'), '');
    await waitForStatus(rt, 'svc', (s) => s.ready === true);
    rmSync(join(dir, 'ready'));
    await waitForStatus(rt, 'svc', (s) => s.ready === false);
    writeFileSync(join(dir, 'ready'), '');
    await waitForStatus(rt, 'svc', (s) => s.ready === true);

    const readyValues = events.filter((e) => e.name === 'svc').map((e) => e.status.ready);
    expect(readyValues.filter((v, k) => k === 0 || v !== readyValues[k - 1])).toEqual([false, true, false, true]);
    expect(rt.statuses().get('svc')!.restarts).toBe(0); // readiness never restarts
    await rt.remove('svc');
    expect(events.at(-1)!.status).toMatchObject({ state: 'Stopped', ready: false });
  });

  it('stops probing when the workload is removed', async () => {
    let httpProbes = 0;
    let tcpProbes = 0;
    const httpServer = createHttpServer((_req, res) => { httpProbes++; res.end('ok'); });
    const tcpServer = createServer((socket) => { tcpProbes++; socket.destroy(); });
    const listen = async (server: Server): Promise<number> => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return (server.address() as AddressInfo).port;
    };
    try {
      const httpPort = await listen(httpServer);
      const tcpPort = await listen(tcpServer);
      const rt = newRuntime();
      const probes = {
        liveness: { ...fast, failureThreshold: 3, httpGet: { port: httpPort, path: '/', host: '127.0.0.1', scheme: 'HTTP' as const } },
        readiness: { ...fast, tcpSocket: { port: tcpPort, host: '127.0.0.1' } },
      };
      await rt.ensure({ name: 'probed', generation: 1, template: node('setInterval(() => {}, 1000)', { probes }) });
      await waitFor('probes of both kinds', () => httpProbes >= 2 && tcpProbes >= 2);
      expect(rt.statuses().get('probed')).toMatchObject({ state: 'Running', ready: true, restarts: 0 });
      await rt.remove('probed');
      const counts = [httpProbes, tcpProbes];
      await new Promise((resolve) => setTimeout(resolve, 2_500)); // two and a half periods
      expect([httpProbes, tcpProbes]).toEqual(counts);
    } finally {
      httpServer.closeAllConnections();
      await Promise.all([httpServer, tcpServer].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    }
  });
});
