import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RestartPolicy, WorkloadStatus, WorkloadTemplate } from '../../protocol/index.js';
import type { BackoffSettings } from '../../edgecore/runtime/restartPolicy.js';
import type { Runtime } from '../../edgecore/runtime/runtime.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * The contract every workload `Runtime` must meet, as `runtime.ts` states it. A runtime's test
 * file calls `runtimeConformanceSuite('process', factory)`; the suite registers its own
 * describe/it blocks, like the store's (`test/store/conformance.ts`).
 *
 * Everything runs through `/bin/sh`, which both a node (process runtime) and the test image
 * (container runtime) have, and is read back through the interface itself (statuses, logs,
 * exec), never through what only one runtime has (pids in /proc, labelled containers, files on
 * the host): those stay in each runtime's own tests.
 */

export interface RuntimeTemplateFields {
  /** argv: the program and its arguments. */
  command: string[];
  env?: Record<string, string>;
  workingDir?: string;
  restartPolicy?: RestartPolicy;
  probes?: WorkloadTemplate['probes'];
}

export interface RuntimeUnderTest {
  runtime: Runtime;
  /** A template of this runtime's kind that runs `fields.command`. */
  template(fields: RuntimeTemplateFields): WorkloadTemplate;
  /** Frees what the runtime left besides its workloads (temp dirs); the suite shuts the runtime down first. */
  cleanup(): Promise<void>;
}

export type MakeRuntime = (opts: { backoff: BackoffSettings }) => Promise<RuntimeUnderTest>;

/** Back-off for every runtime in the suite: quick, so restarts show within a test. */
export const SUITE_BACKOFF: BackoffSettings = { initialMs: 300, maxMs: 1_500, resetAfterMs: 20_000 };

/** Prints `started`, then runs until SIGTERM, which it honours at once (also as a container's PID 1). */
const LONG_RUNNING = ['/bin/sh', '-c', "trap 'exit 0' TERM; echo started; while :; do sleep 1 & wait $!; done"];
const sh = (script: string): string[] => ['/bin/sh', '-c', script];
const EXEC = { timeoutMs: 10_000, maxOutputBytes: 1024 };
const DEADLINE_MS = 30_000;

export function runtimeConformanceSuite(name: string, make: MakeRuntime): void {
  describe(`Runtime conformance: ${name}`, () => {
    let under: RuntimeUnderTest;
    let runtime: Runtime;
    let events: Array<{ name: string; status: WorkloadStatus }>;

    beforeEach(async () => {
      under = await make({ backoff: SUITE_BACKOFF });
      runtime = under.runtime;
      events = [];
      runtime.onStatus((workload, status) => events.push({ name: workload, status }));
    });
    afterEach(async () => {
      await runtime.shutdown({ stopWorkloads: true });
      await under.cleanup();
    });

    const ensure = (workload: string, fields: RuntimeTemplateFields, generation = 1): Promise<void> =>
      runtime.ensure({ name: workload, generation, template: under.template(fields) });
    const statusOf = (workload: string, check: (s: WorkloadStatus) => boolean, what: string): Promise<WorkloadStatus> =>
      waitFor(`${workload}: ${what} (now ${JSON.stringify(runtime.statuses().get(workload))})`, () => {
        const s = runtime.statuses().get(workload);
        return s && check(s) ? s : null;
      }, DEADLINE_MS);
    const statusesOf = (workload: string): WorkloadStatus[] => events.filter((e) => e.name === workload).map((e) => e.status);

    it('starts a workload and reports it Running with a pid, its generation and no restarts; the same ensure again changes nothing', async () => {
      await ensure('web', { command: LONG_RUNNING });
      const running = await statusOf('web', (s) => s.state === 'Running', 'Running');
      expect(running).toMatchObject({ generation: 1, restarts: 0 });
      expect(running.pid).toBeGreaterThan(0);
      expect(statusesOf('web').at(-1)).toMatchObject({ state: 'Running' });
      await waitFor('its first log line', async () => (await runtime.readLogs('web', 10)).includes('started'), DEADLINE_MS);

      const before = events.length;
      await ensure('web', { command: LONG_RUNNING });
      await sleep(300);
      expect(events.length).toBe(before);
      expect(runtime.statuses().get('web')).toMatchObject({ state: 'Running', pid: running.pid, restarts: 0 });
    });

    it('replaces the workload on a new generation or template, and forgets it on remove (idempotent)', async () => {
      await ensure('app', { command: LONG_RUNNING });
      await statusOf('app', (s) => s.state === 'Running', 'Running');

      await ensure('app', { command: LONG_RUNNING, env: { V: '2' } }, 2);
      const second = await statusOf('app', (s) => s.state === 'Running' && s.generation === 2, 'Running generation 2');
      expect(second.restarts).toBe(0);
      expect((await runtime.exec('app', sh('echo "$V"'), EXEC)).stdout).toBe('2\n');

      await ensure('app', { command: LONG_RUNNING, env: { V: '3' } }, 2);
      await waitFor('the template change to run', async () => (await runtime.exec('app', sh('echo "$V"'), EXEC).catch(() => null))?.stdout === '3\n', DEADLINE_MS);
      expect(runtime.statuses().get('app')).toMatchObject({ generation: 2, restarts: 0 });

      await runtime.remove('app');
      expect(runtime.statuses().has('app')).toBe(false);
      await runtime.remove('app');
      await runtime.remove('never-there');
    });

    it('restarts an exiting workload under Always with growing back-off: Exited, then CrashLoop', async () => {
      await ensure('crashy', { command: sh('echo attempt; exit 3') });
      await statusOf('crashy', (s) => s.state === 'CrashLoop' && s.restarts >= 2, 'CrashLoop after 2 restarts');
      await statusOf('crashy', () => statusesOf('crashy').filter((s) => s.state === 'Running').length >= 3, 'a third start');
      const seen = statusesOf('crashy');
      const exits = seen.filter((s) => s.state === 'Exited' || s.state === 'CrashLoop');
      expect(exits[0]).toMatchObject({ state: 'Exited', exitCode: 3, lastError: 'exited with code 3', restarts: 0 });
      expect(exits.slice(1).every((s) => s.state === 'CrashLoop' && s.exitCode === 3)).toBe(true);
      // Lower bounds only: the second restart waits at least twice the first back-off (2 × 300 ms).
      const starts = seen.filter((s) => s.state === 'Running');
      expect(starts.map((s) => s.restarts).slice(0, 3)).toEqual([0, 1, 2]);
      expect(Date.parse(starts[2]!.observedAt) - Date.parse(starts[1]!.observedAt)).toBeGreaterThanOrEqual(550);
      await waitFor('a log line from each run', async () => (await runtime.readLogs('crashy', 50)).filter((l) => l === 'attempt').length >= 3, DEADLINE_MS);
    });

    it('leaves a workload that finished alone under OnFailure (exit 0: Exited) and Never (exit 1: Failed)', async () => {
      await ensure('ok', { command: ['/bin/true'], restartPolicy: 'OnFailure' });
      await ensure('bad', { command: ['/bin/false'], restartPolicy: 'Never' });
      const ok = await statusOf('ok', (s) => s.state === 'Exited', 'Exited');
      const bad = await statusOf('bad', (s) => s.state === 'Failed', 'Failed');
      expect(ok).toMatchObject({ exitCode: 0, restarts: 0 });
      expect(bad).toMatchObject({ exitCode: 1, restarts: 0, lastError: 'exited with code 1' });
    });

    it('restarts a failing workload under OnFailure', async () => {
      await ensure('flaky', { command: sh('exit 1'), restartPolicy: 'OnFailure' });
      await statusOf('flaky', (s) => s.restarts >= 2, '2 restarts');
    });

    it('runs the command with its args, env and workingDir, and logs stdout and stderr', async () => {
      await ensure('env', {
        command: ['/bin/sh', '-c', 'echo "$GREETING $1 in $(pwd)"; echo to-stderr >&2', 'sh', 'world'],
        env: { GREETING: 'hello' }, workingDir: '/tmp', restartPolicy: 'Never',
      });
      await statusOf('env', (s) => s.state === 'Exited', 'Exited');
      await waitFor('both lines in the log', async () => (await runtime.readLogs('env', 10)).length >= 2, DEADLINE_MS);
      expect((await runtime.readLogs('env', 10)).sort()).toEqual(['hello world in /tmp', 'to-stderr']);
      expect(await runtime.readLogs('env', 1)).toHaveLength(1);
    });

    it('follows new log lines until told to stop', async () => {
      await ensure('talker', { command: sh("trap 'exit 0' TERM; while :; do echo tick; sleep 1 & wait $!; done") });
      await statusOf('talker', (s) => s.state === 'Running', 'Running');
      const lines: string[] = [];
      const stop = runtime.followLogs('talker', (batch) => lines.push(...batch));
      try {
        await waitFor('followed lines', () => lines.filter((l) => l === 'tick').length >= 2, DEADLINE_MS);
      } finally {
        stop();
      }
    });

    it('runs exec beside the workload with its env: exit code, both streams, output cut, timeout', async () => {
      await ensure('shell', { command: LONG_RUNNING, env: { WHO: 'edge' } });
      await statusOf('shell', (s) => s.state === 'Running', 'Running');
      const result = await runtime.exec('shell', sh('echo "hi $WHO"; echo oops >&2; exit 7'), EXEC);
      expect(result).toEqual({ exitCode: 7, stdout: 'hi edge\n', stderr: 'oops\n', timedOut: false });
      const capped = await runtime.exec('shell', sh('echo 0123456789abcdef'), { timeoutMs: 10_000, maxOutputBytes: 4 });
      expect(capped.stdout).toBe('0123\n[output cut at 4 bytes]\n');
      const hung = await runtime.exec('shell', ['/bin/sleep', '30'], { timeoutMs: 500, maxOutputBytes: 1024 });
      expect(hung.timedOut).toBe(true);
      await expect(runtime.exec('nothing', ['/bin/true'], EXEC)).rejects.toThrow();
    });

    it('restarts a workload whose exec liveness probe starts failing, and reports readiness from its readiness probe', async () => {
      // The probe fails once a "dead" marker exists, and the test creates it: a probe that instead
      // waited for the workload to create a marker raced the first check (initialDelaySeconds 0)
      // on a loaded machine and restarted a healthy workload.
      const dead = `/tmp/ef-conformance-${randomUUID()}`;
      const check = { periodSeconds: 1, timeoutSeconds: 5, initialDelaySeconds: 0, failureThreshold: 1, successThreshold: 1 };
      await ensure('live', {
        command: sh(`rm -f "$DEAD"; trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done`),
        env: { DEAD: dead },
        probes: { liveness: { ...check, exec: { command: sh('test ! -e "$DEAD"') } }, readiness: { ...check, exec: { command: ['/bin/true'] } } },
      });
      await statusOf('live', (s) => s.state === 'Running' && s.ready === true, 'Running and ready');
      await sleep(1_500); // a passing check or two: no restart
      expect(runtime.statuses().get('live')).toMatchObject({ state: 'Running', restarts: 0 });

      await runtime.exec('live', sh('touch "$DEAD"'), EXEC);
      const restarted = await statusOf('live', (s) => s.state === 'Running' && s.restarts >= 1, 'Running after a restart');
      expect(restarted.lastError).toMatch(/^liveness probe failed: /);
    });

    it('a failing liveness probe under Never leaves the workload Failed', async () => {
      const liveness = { periodSeconds: 1, timeoutSeconds: 5, initialDelaySeconds: 0, failureThreshold: 1, successThreshold: 1, exec: { command: ['/bin/false'] } };
      await ensure('doomed', { command: LONG_RUNNING, restartPolicy: 'Never', probes: { liveness } });
      const failed = await statusOf('doomed', (s) => s.state === 'Failed', 'Failed');
      expect(failed).toMatchObject({ restarts: 0, pid: null });
      expect(failed.lastError).toMatch(/^liveness probe failed: /);
    });

    it('shutdown with stopWorkloads stops every workload and refuses new work', async () => {
      await ensure('up', { command: LONG_RUNNING });
      await statusOf('up', (s) => s.state === 'Running', 'Running');
      await runtime.shutdown({ stopWorkloads: true });
      expect(runtime.statuses().get('up')?.state ?? 'Stopped').toBe('Stopped');
      await expect(ensure('late', { command: ['/bin/true'] })).rejects.toThrow(/shut down/);
    });
  });
}
