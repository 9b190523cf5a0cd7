import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WorkloadStatus } from '../../protocol/index.js';
import type { ContainerRuntime } from '../../edgecore/runtime/container/containerRuntime.js';
import { waitFor } from '../helpers/wait.js';
import { containersOf, inSubnet, reportSkip, setUpEngine, template, testRuntime, waitForStatus } from './engine.js';

const setup = await setUpEngine();
reportSkip(setup, 'container probe tests');

/** Creates /tmp/alive, then runs until SIGTERM (honoured at once, exit 0). */
const ALIVE_FILE_KEEPER = ['/bin/sh', '-c', "touch /tmp/alive; trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"];
/** Serves /www (holding a `ready` file) on port 8080 of the container's address, until SIGTERM. */
const WEB_SERVER = ['/bin/sh', '-c',
  "mkdir -p /www; echo ok > /www/ready; httpd -f -p 8080 -h /www & trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"];
const EXEC_OPTS = { timeoutMs: 10_000, maxOutputBytes: 4096 };
const aliveProbe = { exec: { command: ['/bin/sh', '-c', 'test -f /tmp/alive'] }, periodSeconds: 1, failureThreshold: 2, timeoutSeconds: 5 };
const readyProbe = { httpGet: { port: 8080, path: '/ready' }, periodSeconds: 1, failureThreshold: 1, timeoutSeconds: 2 };

describe.skipIf(setup.engine === null)('container health probes on a real Podman engine', () => {
  const engine = setup.engine!;
  let work: string;
  const runtimes: ContainerRuntime[] = [];

  const newRuntime = (opts: Parameters<typeof testRuntime>[2] = {}): ContainerRuntime => {
    const runtime = testRuntime(engine, join(work, 'volumes'), opts);
    runtimes.push(runtime);
    return runtime;
  };
  const waitForState = waitForStatus;
  const record = (runtime: ContainerRuntime, workload: string): WorkloadStatus[] => {
    const seen: WorkloadStatus[] = [];
    runtime.onStatus((name, s) => { if (name === workload) seen.push(s); });
    return seen;
  };

  beforeEach(() => { work = mkdtempSync(join(tmpdir(), 'ef-ctr-probes-')); });
  afterEach(async () => {
    for (const runtime of runtimes.splice(0)) await runtime.shutdown({ stopWorkloads: true });
    rmSync(work, { recursive: true, force: true });
  });
  afterAll(async () => { await engine.cleanup(); });

  it('restarts the container when its exec liveness probe (run inside it) starts failing', async () => {
    const runtime = newRuntime();
    const seen = record(runtime, 'live');
    await runtime.ensure({ name: 'live', generation: 1, template: template({ command: ALIVE_FILE_KEEPER, probes: { liveness: aliveProbe } }) });
    const first = await waitForState(runtime, 'live', (s) => s.state === 'Running', 'Running');
    expect(first).toMatchObject({ restarts: 0, ready: null }); // no readiness probe: ready stays null
    const [id] = await containersOf(runtime, 'live');
    // A few passing checks go by without a restart.
    await waitFor('three passing periods', () => Date.now() - Date.parse(first.observedAt) > 3_000, 10_000);
    expect(runtime.statuses().get('live')).toMatchObject({ state: 'Running', restarts: 0, pid: first.pid });

    // The file the probe checks goes away: the workload is now "dead" though its process runs.
    await runtime.exec('live', ['/bin/rm', '/tmp/alive'], EXEC_OPTS);
    const restarted = await waitForState(runtime, 'live', (s) => s.state === 'Running' && s.restarts === 1, 'Running again after the liveness failure');
    expect(restarted.pid).not.toBe(first.pid);
    expect(restarted.lastError).toBe('liveness probe failed: command ["/bin/sh","-c","test -f /tmp/alive"] exited with code 1');
    // The SIGTERM exit was 0, yet the run is reported as a failure, then restarted in place.
    const ended = seen.find((s) => s.state !== 'Running' && s.state !== 'Pending');
    expect(ended).toMatchObject({ state: 'Exited', exitCode: 0, restarts: 0, lastError: restarted.lastError });
    expect(await containersOf(runtime, 'live')).toEqual([id]);

    // The new run re-created the file: its fresh prober keeps passing.
    await waitFor('three passing periods of the new run', () => Date.now() - Date.parse(restarted.observedAt) > 3_000, 10_000);
    expect(runtime.statuses().get('live')).toMatchObject({ state: 'Running', restarts: 1, pid: restarted.pid });
  });

  it('reports Failed without a restart when the liveness probe fails under restartPolicy Never', async () => {
    const runtime = newRuntime();
    await runtime.ensure({
      name: 'once', generation: 1,
      template: template({ command: ALIVE_FILE_KEEPER, restartPolicy: 'Never', probes: { liveness: aliveProbe } }),
    });
    await waitForState(runtime, 'once', (s) => s.state === 'Running', 'Running');
    await runtime.exec('once', ['/bin/rm', '/tmp/alive'], EXEC_OPTS);
    const failed = await waitForState(runtime, 'once', (s) => s.state === 'Failed', 'Failed');
    expect(failed).toMatchObject({ restarts: 0, pid: null, lastError: expect.stringMatching(/^liveness probe failed: /) });
  });

  it('sets ready from an HTTP readiness probe on the container address, without restarts when it fails', async () => {
    const runtime = newRuntime();
    const seen = record(runtime, 'web');
    await runtime.ensure({ name: 'web', generation: 1, template: template({ command: WEB_SERVER, probes: { readiness: readyProbe } }) });
    expect(runtime.statuses().get('web')?.ready).toBe(false); // Pending: not ready yet
    const ready = await waitForState(runtime, 'web', (s) => s.state === 'Running' && s.ready === true, 'ready');
    // The run started not ready; readiness came with the first passing check.
    expect(seen.find((s) => s.state === 'Running')?.ready).toBe(false);
    const [id] = await containersOf(runtime, 'web');
    const address = (await runtime.engine.inspectContainer(id!))?.NetworkSettings?.IPAddress ?? '';
    // On the engine's own network, whichever backend podman chose (netavark or CNI).
    const network = await engine.defaultNetwork();
    expect(inSubnet(address, network.subnet), `${address} in ${network.name} ${network.subnet} (${network.backend})`).toBe(true);
    expect((await fetch(`http://${address}:8080/ready`)).status).toBe(200);

    // The page goes away (404): not ready, but nothing is restarted.
    await runtime.exec('web', ['/bin/rm', '/www/ready'], EXEC_OPTS);
    await waitForState(runtime, 'web', (s) => s.ready === false, 'not ready after the page went away');
    await runtime.exec('web', ['/bin/sh', '-c', 'echo ok > /www/ready'], EXEC_OPTS);
    await waitForState(runtime, 'web', (s) => s.ready === true, 'ready again');

    // The server goes away (connection refused): not ready, still no restart.
    await killHttpd(runtime, 'web');
    const down = await waitForState(runtime, 'web', (s) => s.ready === false, 'not ready after the server went away');
    expect(down).toMatchObject({ state: 'Running', restarts: 0, pid: ready.pid });
    expect(seen.every((s) => s.restarts === 0)).toBe(true);
  });

  it('probes an adopted container: a new runtime learns readiness again', async () => {
    const first = newRuntime();
    const desired = { name: 'kept', generation: 1, template: template({ command: WEB_SERVER, probes: { readiness: readyProbe, liveness: aliveProbeFor8080 } }) };
    await first.ensure(desired);
    const before = await waitForState(first, 'kept', (s) => s.ready === true, 'ready');
    await first.shutdown({ stopWorkloads: false });

    const second = newRuntime({ nodeName: first.nodeName });
    const seen = record(second, 'kept');
    await second.adopt();
    expect(second.statuses().get('kept')).toMatchObject({ state: 'Running', pid: before.pid, ready: false });
    await waitForState(second, 'kept', (s) => s.ready === true, 'ready after adoption');
    // Its liveness probe runs too: the server dies, the adopted container is restarted.
    await killHttpd(second, 'kept');
    await waitForState(second, 'kept', (s) => s.state === 'Running' && s.restarts === 1 && s.ready === true, 'restarted and ready again');
    // The failing probe went to the container's own address on the engine's network.
    const probed = seen.map((s) => /^liveness probe failed: TCP connect to ([\d.]+):8080/.exec(s.lastError ?? '')?.[1]).find(Boolean);
    expect(probed).toBeDefined();
    expect(inSubnet(probed!, (await engine.defaultNetwork()).subnet)).toBe(true);
  });
});

/** Liveness over TCP to the web server's port: fails once httpd is gone. */
const aliveProbeFor8080 = { tcpSocket: { port: 8080 }, periodSeconds: 1, failureThreshold: 2, timeoutSeconds: 2 };

/** Kills the workload's httpd (the test image has no pidof: it is found by name in /proc). */
async function killHttpd(runtime: ContainerRuntime, workload: string): Promise<void> {
  const script = 'for d in /proc/[0-9]*; do if [ "$(cat $d/comm 2>/dev/null)" = httpd ]; then kill ${d#/proc/}; fi; done';
  const result = await runtime.exec(workload, ['/bin/sh', '-c', script], EXEC_OPTS);
  if (result.exitCode !== 0) throw new Error(`cannot kill httpd: ${result.stderr}`);
}
