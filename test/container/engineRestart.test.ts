import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkloadStatus } from '../../protocol/index.js';
import type { ContainerRuntime } from '../../edgecore/runtime/container/containerRuntime.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { containersOf, LONG_RUNNING, reportSkip, setUpEngine, template, testRuntime, waitForStatus } from './engine.js';

// An engine of its own: this file stops and restarts it.
const setup = await setUpEngine();
reportSkip(setup, 'container engine restart tests');

describe.skipIf(setup.engine === null)('ContainerRuntime across an engine restart', () => {
  const engine = setup.engine!;
  let work = '';
  const runtimes: ContainerRuntime[] = [];

  beforeAll(() => { work = mkdtempSync(join(tmpdir(), 'ef-ctr-restart-')); });

  afterAll(async () => {
    await engine.start().catch(() => {}); // in case a test left it stopped: removal needs it
    for (const runtime of runtimes) await runtime.shutdown({ stopWorkloads: true });
    await engine.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  const waitForState = (runtime: ContainerRuntime, name: string, check: (s: WorkloadStatus) => boolean, what: string) =>
    waitForStatus(runtime, name, check, what, 40_000);

  it('reports the outage, then restarts what died while the engine was down', async () => {
    const runtime = testRuntime(engine, join(work, 'volumes'));
    runtimes.push(runtime);
    await runtime.ensure({ name: 'survivor', generation: 1, template: template({ command: LONG_RUNNING }) });
    const running = await waitForState(runtime, 'survivor', (s) => s.state === 'Running', 'Running');
    const [id] = await containersOf(runtime, 'survivor');

    await engine.stop();
    const down = await waitForState(runtime, 'survivor', (s) => (s.lastError ?? '').startsWith('container engine unreachable'), 'an outage reported');
    expect(down.state).toBe('Running'); // the container outlives the engine; its state is just unknown
    // New work while the engine is down fails clearly and is retried with back-off.
    await runtime.ensure({ name: 'newcomer', generation: 1, template: template({ command: LONG_RUNNING }) });
    const failed = await waitForState(runtime, 'newcomer', (s) => s.state === 'Failed', 'Failed');
    expect(failed.lastError).toContain(`cannot reach the container engine at ${engine.socketPath}`);
    // A fresh edgecore starting now must not fail on adopt().
    const early = testRuntime(engine, join(work, 'volumes'), { nodeName: runtime.nodeName });
    await expect(early.adopt()).resolves.toBeUndefined();
    await early.shutdown({ stopWorkloads: false });

    // The workload dies while nobody watches.
    process.kill(running.pid!, 'SIGKILL');
    await engine.start();

    const back = await waitForState(runtime, 'survivor', (s) => s.state === 'Running' && s.restarts >= 1, 'Running again after a restart');
    expect(back.pid).not.toBe(running.pid);
    expect(await containersOf(runtime, 'survivor')).toEqual([id]);
    await waitForState(runtime, 'newcomer', (s) => s.state === 'Running', 'Running once the engine is back');
    expect(await containersOf(runtime, 'newcomer')).toHaveLength(1);
  });

  it('clears the outage note when the engine comes back and the container is still running', async () => {
    const runtime = testRuntime(engine, join(work, 'volumes'));
    runtimes.push(runtime);
    await runtime.ensure({ name: 'steady', generation: 1, template: template({ command: LONG_RUNNING }) });
    const before = await waitForState(runtime, 'steady', (s) => s.state === 'Running', 'Running');
    await engine.stop();
    await waitForState(runtime, 'steady', (s) => (s.lastError ?? '').startsWith('container engine unreachable'), 'an outage reported');
    await engine.start();
    const after = await waitForState(runtime, 'steady', (s) => s.lastError === null || s.lastError === undefined, 'the outage cleared');
    expect(after).toMatchObject({ state: 'Running', pid: before.pid, restarts: 0 });
  });

  it('does not count an engine outage as a failed exec liveness probe, and probes again afterwards', async () => {
    const runtime = testRuntime(engine, join(work, 'volumes'));
    runtimes.push(runtime);
    const keeper = ['/bin/sh', '-c', "touch /tmp/alive; trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"];
    const liveness = { exec: { command: ['/bin/sh', '-c', 'test -f /tmp/alive'] }, periodSeconds: 1, failureThreshold: 2, timeoutSeconds: 5 };
    await runtime.ensure({ name: 'probed', generation: 1, template: template({ command: keeper, probes: { liveness } }) });
    const before = await waitForState(runtime, 'probed', (s) => s.state === 'Running', 'Running');
    await engine.stop();
    await waitForState(runtime, 'probed', (s) => (s.lastError ?? '').startsWith('container engine unreachable'), 'an outage reported');
    await sleep(4_000); // long enough for the liveness probe to fail its threshold twice over
    await engine.start();
    await waitForState(runtime, 'probed', (s) => s.lastError === null || s.lastError === undefined, 'the outage cleared');
    await sleep(3_000); // a stop wrongly pending from the outage would happen by now
    expect(runtime.statuses().get('probed')).toMatchObject({ state: 'Running', pid: before.pid, restarts: 0 });

    // The liveness probe still runs: a real failure now restarts the container.
    await runtime.exec('probed', ['/bin/rm', '/tmp/alive'], { timeoutMs: 10_000, maxOutputBytes: 1024 });
    const restarted = await waitForState(runtime, 'probed', (s) => s.state === 'Running' && s.restarts === 1, 'restarted after a real liveness failure');
    expect(restarted.lastError).toMatch(/^liveness probe failed: command .* exited with code 1$/);
  });
});
