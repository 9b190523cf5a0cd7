import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WorkloadStatus } from '../../protocol/index.js';
import type { ContainerRuntime } from '../../edgecore/runtime/container/containerRuntime.js';
import { LABELS } from '../../edgecore/runtime/container/containerSpec.js';
import { waitFor } from '../helpers/wait.js';
import { containersOf, LONG_RUNNING, reportSkip, setUpEngine, template, testRuntime, TEST_IMAGE, waitForStatus } from './engine.js';

const setup = await setUpEngine();
reportSkip(setup, 'container runtime tests');

describe.skipIf(setup.engine === null)('ContainerRuntime on a real Podman engine', () => {
  const engine = setup.engine!;
  let work: string;
  const runtimes: ContainerRuntime[] = [];

  const newRuntime = (opts: Parameters<typeof testRuntime>[2] = {}): ContainerRuntime => {
    const runtime = testRuntime(engine, join(work, 'volumes'), opts);
    runtimes.push(runtime);
    return runtime;
  };
  const statusOf = (runtime: ContainerRuntime, name: string): WorkloadStatus | undefined => runtime.statuses().get(name);
  const waitForState = waitForStatus;

  beforeEach(() => { work = mkdtempSync(join(tmpdir(), 'ef-ctr-')); });
  afterEach(async () => {
    for (const runtime of runtimes.splice(0)) await runtime.shutdown({ stopWorkloads: true });
    rmSync(work, { recursive: true, force: true });
  });
  afterAll(async () => { await engine.cleanup(); });

  it('creates and starts a labelled container and reports it Running with its pid and logs', async () => {
    const runtime = newRuntime();
    await runtime.ensure({ name: 'web', generation: 1, template: template({ command: LONG_RUNNING }) });
    const status = await waitForState(runtime, 'web', (s) => s.state === 'Running', 'Running');
    const [id] = await containersOf(runtime, 'web');
    const found = await runtime.engine.inspectContainer(id!);
    expect(found?.Name).toBe(`/ef-${runtime.nodeName}-web-g1`);
    expect(found?.Config.Labels).toMatchObject({ [LABELS.owned]: 'true', [LABELS.workload]: 'web', [LABELS.generation]: '1' });
    expect(found?.Config.Labels[LABELS.templateHash]).toMatch(/^[0-9a-f]{64}$/);
    expect(status.pid).toBe(found?.State.Pid);
    expect(status).toMatchObject({ restarts: 0, generation: 1 });
    await waitFor('log line', async () => (await runtime.readLogs('web', 10)).includes('started'));
    // Idempotent: the same generation and template does not touch the container.
    await runtime.ensure({ name: 'web', generation: 1, template: template({ command: LONG_RUNNING }) });
    expect(await containersOf(runtime, 'web')).toEqual([id]);
  });

  it('replaces the container when the generation or template changes, and removes it', async () => {
    const runtime = newRuntime();
    await runtime.ensure({ name: 'app', generation: 1, template: template({ command: LONG_RUNNING }) });
    await waitForState(runtime, 'app', (s) => s.state === 'Running', 'Running');
    const [first] = await containersOf(runtime, 'app');

    await runtime.ensure({ name: 'app', generation: 2, template: template({ command: LONG_RUNNING, env: { V: '2' } }) });
    expect(await runtime.engine.inspectContainer(first!)).toBeNull();
    const s2 = await waitForState(runtime, 'app', (s) => s.state === 'Running' && s.generation === 2, 'Running generation 2');
    const [second, ...others] = await containersOf(runtime, 'app');
    expect(others).toEqual([]);
    expect(second).not.toBe(first);
    expect((await runtime.engine.inspectContainer(second!))?.Config.Env).toContain('V=2');
    expect(s2.restarts).toBe(0);

    await runtime.remove('app');
    expect(await containersOf(runtime, 'app')).toEqual([]);
    expect(runtime.statuses().has('app')).toBe(false);
    await runtime.remove('app'); // idempotent
  });

  it('restarts an exiting container with back-off, reaching CrashLoop (restartPolicy Always)', async () => {
    const runtime = newRuntime();
    const seen: WorkloadStatus[] = [];
    runtime.onStatus((name, s) => { if (name === 'crashy') seen.push(s); });
    await runtime.ensure({ name: 'crashy', generation: 1, template: template({ command: ['/bin/sh', '-c', 'echo boom; exit 3'] }) });
    const looping = await waitForState(runtime, 'crashy', (s) => s.state === 'CrashLoop' && s.restarts >= 2, 'CrashLoop after 2 restarts');
    expect(looping).toMatchObject({ exitCode: 3, lastError: 'exited with code 3', pid: null });
    await waitFor('a third start', () => seen.filter((s) => s.state === 'Running').length >= 3, 30_000);
    // Restarted in place: still one container, its log holds every run.
    const ids = await containersOf(runtime, 'crashy');
    expect(ids).toHaveLength(1);
    await waitFor('a log line from each run', async () => (await runtime.readLogs('crashy', 50)).filter((l) => l === 'boom').length >= 3);
    expect(seen.some((s) => s.state === 'Running')).toBe(true);
    expect(seen.some((s) => s.state === 'Exited' && s.restarts === 0)).toBe(true);
    // Back-off grows: the gap before the third start is at least the second delay (2 × 300 ms).
    const starts = seen.filter((s) => s.state === 'Running').map((s) => Date.parse(s.observedAt));
    expect(starts.length).toBeGreaterThanOrEqual(3);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(550);
  });

  it('honours command, args, env and workingDir; mounts hostPath and data volumes', async () => {
    const runtime = newRuntime();
    const out = join(work, 'out');
    mkdirSync(out);
    await runtime.ensure({
      name: 'writer', generation: 1, template: template({
        command: ['/bin/sh', '-c'],
        args: ['echo "$GREETING from $0 in $(pwd)" > /out/result.txt; echo kept > /data/file', 'arg-zero'],
        env: { GREETING: 'hello' },
        workingDir: '/tmp',
        volumes: [{ mountPath: '/out', hostPath: out }, { mountPath: '/data', dataVolume: 'state' }],
        restartPolicy: 'Never',
      }),
    });
    await waitForState(runtime, 'writer', (s) => s.state === 'Exited', 'Exited');
    expect(readFileSync(join(out, 'result.txt'), 'utf8')).toBe('hello from arg-zero in /tmp\n');
    expect(readFileSync(join(work, 'volumes', 'writer', 'state', 'file'), 'utf8')).toBe('kept\n');
  });

  it('applies memory, cpu and port settings, reachable through the published port', async () => {
    const runtime = newRuntime();
    const site = join(work, 'site');
    mkdirSync(site);
    writeFileSync(join(site, 'index.html'), 'hello from the container\n');
    const hostPort = await freePort();
    await runtime.ensure({
      name: 'www', generation: 1, template: template({
        command: ['/bin/httpd', '-f', '-p', '8080', '-h', '/www'],
        volumes: [{ mountPath: '/www', hostPath: site, readOnly: true }],
        ports: [{ containerPort: 8080, hostPort, hostIP: '127.0.0.1' }],
        resources: { memoryBytes: 64 * 1024 * 1024, cpus: 0.5 },
      }),
    });
    await waitForState(runtime, 'www', (s) => s.state === 'Running', 'Running');
    const found = await runtime.engine.inspectContainer((await containersOf(runtime, 'www'))[0]!);
    expect(found?.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(found?.HostConfig.NanoCpus).toBe(500_000_000);
    expect(found?.HostConfig.PortBindings?.['8080/tcp']).toEqual([{ HostIp: '127.0.0.1', HostPort: String(hostPort) }]);
    // Podman adds mount options ("ro,rprivate,rbind"); the source, target and ro are ours.
    expect(found?.HostConfig.Binds?.some((b) => b.startsWith(`${site}:/www:ro`))).toBe(true);
    const body = await waitFor('page through the published port', async () => {
      const res = await fetch(`http://127.0.0.1:${hostPort}/index.html`);
      return res.ok ? res.text() : null;
    }, 20_000, 200);
    expect(body).toBe('hello from the container\n');
  });

  it('reports Failed when the image is missing and may not be pulled', async () => {
    const runtime = newRuntime();
    await runtime.ensure({ name: 'never', generation: 1, template: template({ image: 'localhost/edgefleet-missing:1', imagePullPolicy: 'Never', restartPolicy: 'Never' }) });
    const never = await waitForState(runtime, 'never', (s) => s.state === 'Failed', 'Failed');
    expect(never.lastError).toContain('image not present and imagePullPolicy is Never');
    // A registry that is not there (a closed loopback port): the pull error is surfaced.
    await runtime.ensure({ name: 'pull', generation: 1, template: template({ image: '127.0.0.1:9/edgefleet/missing:1', restartPolicy: 'Never' }) });
    const pull = await waitForState(runtime, 'pull', (s) => s.state === 'Failed', 'Failed');
    expect(pull.lastError).toMatch(/^cannot pull image 127\.0\.0\.1:9\/edgefleet\/missing:1: .*(refused|connect)/);
    expect(await containersOf(runtime, 'never')).toEqual([]);
    expect(await containersOf(runtime, 'pull')).toEqual([]);
  });

  it('loads the image from imageArchive when it is missing', async () => {
    const archived = 'localhost/edgefleet-archived:1';
    const archive = join(work, 'image.tar');
    for (const args of [['tag', TEST_IMAGE, archived], ['save', '-o', archive, archived], ['rmi', archived]]) {
      const r = await engine.podman(...args);
      expect(r.code, r.stderr).toBe(0);
    }
    const runtime = newRuntime();
    expect(await runtime.engine.inspectImage(archived)).toBeNull();
    await runtime.ensure({ name: 'airgap', generation: 1, template: template({ image: archived, imagePullPolicy: 'Never', imageArchive: archive, command: LONG_RUNNING }) });
    await waitForState(runtime, 'airgap', (s) => s.state === 'Running', 'Running');
    expect(await runtime.engine.inspectImage(archived)).not.toBeNull();

    writeFileSync(join(work, 'junk.tar'), 'not an image');
    await runtime.ensure({ name: 'junk', generation: 1, template: template({ image: 'localhost/edgefleet-junk:1', imageArchive: join(work, 'junk.tar'), restartPolicy: 'Never' }) });
    const junk = await waitForState(runtime, 'junk', (s) => s.state === 'Failed', 'Failed');
    expect(junk.lastError).toContain(`cannot load imageArchive ${join(work, 'junk.tar')}`);
  });

  it('removeUndesired removes only this node\'s containers that are no longer desired', async () => {
    const runtime = newRuntime();
    const neighbour = newRuntime();
    for (const name of ['keep', 'drop']) await runtime.ensure({ name, generation: 1, template: template({ command: LONG_RUNNING }) });
    await neighbour.ensure({ name: 'drop', generation: 1, template: template({ command: LONG_RUNNING }) });
    await waitForState(runtime, 'drop', (s) => s.state === 'Running', 'Running');
    await waitForState(neighbour, 'drop', (s) => s.state === 'Running', 'Running');
    expect(await runtime.removeUndesired(new Set(['keep']))).toEqual(['drop']);
    expect(await containersOf(runtime, 'drop')).toEqual([]);
    expect(await containersOf(runtime, 'keep')).toHaveLength(1);
    expect(await containersOf(neighbour, 'drop')).toHaveLength(1);
    expect([...runtime.statuses().keys()]).toEqual(['keep']);
  });

  // Exit code, both streams and the output cut of exec: test/runtime/conformance.ts.
  it('kills a timed-out exec inside the container, names a workload without one, and follows what PID 1 writes', async () => {
    const runtime = newRuntime();
    await runtime.ensure({ name: 'shell', generation: 1, template: template({ command: LONG_RUNNING }) });
    await waitForState(runtime, 'shell', (s) => s.state === 'Running', 'Running');
    const hung = await runtime.exec('shell', ['/bin/sleep', '30'], { timeoutMs: 500, maxOutputBytes: 1024 });
    expect(hung.timedOut).toBe(true);
    await waitFor('the timed-out exec to be killed', async () => {
      const ps = await runtime.exec('shell', ['/bin/ps'], { timeoutMs: 10_000, maxOutputBytes: 64 * 1024 });
      return !ps.stdout.includes('sleep 30');
    }, 10_000, 200);
    await expect(runtime.exec('nothing', ['/bin/true'], { timeoutMs: 1000, maxOutputBytes: 10 })).rejects.toThrow(/no running container/);

    const lines: string[] = [];
    const stop = runtime.followLogs('shell', (batch) => lines.push(...batch));
    try {
      await new Promise((r) => setTimeout(r, 500)); // let the follower attach
      await runtime.exec('shell', ['/bin/sh', '-c', 'echo followed > /proc/1/fd/1'], { timeoutMs: 10_000, maxOutputBytes: 1024 });
      await waitFor('followed log line', () => lines.includes('followed'), 15_000);
    } finally {
      stop();
    }
  });

  it('leaves containers running on shutdown and a new runtime adopts them without duplicates', async () => {
    const first = newRuntime();
    const desired = { name: 'svc', generation: 4, template: template({ command: LONG_RUNNING }) };
    await first.ensure(desired);
    const before = await waitForState(first, 'svc', (s) => s.state === 'Running', 'Running');
    const [id] = await containersOf(first, 'svc');
    await first.shutdown({ stopWorkloads: false });
    expect((await first.engine.inspectContainer(id!))?.State.Running).toBe(true);

    const second = newRuntime({ nodeName: first.nodeName });
    const adopted: string[] = [];
    second.onStatus((name, s) => adopted.push(`${name}:${s.state}`));
    await second.adopt();
    expect(statusOf(second, 'svc')).toMatchObject({ state: 'Running', pid: before.pid, generation: 4, restarts: 0 });
    expect(adopted).toEqual(['svc:Running']);
    await second.ensure(desired); // same generation and template: kept as is
    expect(await containersOf(second, 'svc')).toEqual([id]);
    // Supervision works on the adopted container: it is restarted after it is killed.
    await second.engine.killContainer(id!, 'SIGKILL');
    await waitForState(second, 'svc', (s) => s.state === 'Running' && s.restarts === 1, 'Running after a restart');
    expect(await containersOf(second, 'svc')).toEqual([id]);

    await second.shutdown({ stopWorkloads: true });
    expect(await containersOf(second, 'svc')).toEqual([]);
  });

  it('an ensure after a restart adopts the container even without adopt()', async () => {
    const first = newRuntime();
    const desired = { name: 'late', generation: 1, template: template({ command: LONG_RUNNING }) };
    await first.ensure(desired);
    await waitForState(first, 'late', (s) => s.state === 'Running', 'Running');
    const ids = await containersOf(first, 'late');
    await first.shutdown({ stopWorkloads: false });
    const second = newRuntime({ nodeName: first.nodeName });
    await second.ensure(desired);
    await waitForState(second, 'late', (s) => s.state === 'Running', 'Running');
    expect(await containersOf(second, 'late')).toEqual(ids);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
