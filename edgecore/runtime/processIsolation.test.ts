import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProcessTemplate, WorkloadStatus } from '../../protocol/index.js';
import { pollUntil } from './processGroup.js';
import { pidNamespacesAvailable } from './processExec.js';
import { ProcessRuntime } from './processRuntime.js';
import type { RecordKeeper, WorkloadRecord } from './runtime.js';

/**
 * Attacks from the issue-20 audit, against real processes: a workload ran as edgecore's own
 * user (root) and an `exec` printed uid=0; an exec whose command left its process group with
 * setsid outlived its timeout (the exec answered 504, its processes kept running as root).
 */

class MemoryRecords implements RecordKeeper {
  readonly byName = new Map<string, WorkloadRecord>();
  save(record: WorkloadRecord): void { this.byName.set(record.name, structuredClone(record)); }
  remove(name: string): void { this.byName.delete(name); }
  load(): WorkloadRecord[] { return [...this.byName.values()]; }
}

const asRoot = process.getuid?.() === 0;
const pidNs = pidNamespacesAvailable();
const NOBODY = 65534;
const EXEC = { timeoutMs: 10_000, maxOutputBytes: 4096 };

let dir: string;
let runtime: ProcessRuntime;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ef-isolation-'));
  runtime = new ProcessRuntime({ logDir: join(dir, 'logs'), records: new MemoryRecords(), stopGraceMs: 1_000 });
});
afterEach(async () => {
  await runtime.shutdown({ stopWorkloads: true });
  rmSync(dir, { recursive: true, force: true });
});

const template = (script: string, extra: Partial<ProcessTemplate> = {}): ProcessTemplate =>
  ({ runtime: 'process', command: '/bin/sh', args: ['-c', script], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [], ...extra });

async function running(name: string): Promise<WorkloadStatus> {
  let status: WorkloadStatus | undefined;
  if (!(await pollUntil(() => (status = runtime.statuses().get(name))?.state === 'Running', 20_000))) throw new Error(`${name} never Running: ${JSON.stringify(status)}`);
  return status!;
}

/** Live processes whose command line contains `marker`, with their real uid. */
function processesWith(marker: string): { pid: number; uid: number }[] {
  const found: { pid: number; uid: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(marker)) continue;
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) continue;
      found.push({ pid: Number(entry), uid: Number(/^Uid:\s+(\d+)/m.exec(status)![1]) });
    } catch { /* gone meanwhile */ }
  }
  return found;
}

describe.skipIf(!asRoot)('process workloads run as their user', () => {
  it('the workload, its exec probes and exec run as runAsUser/runAsGroup with the supplementary groups asked, never as root', async () => {
    const probe = { periodSeconds: 1, timeoutSeconds: 5, initialDelaySeconds: 0, failureThreshold: 1, successThreshold: 1 };
    await runtime.ensure({ name: 'app', generation: 1, template: template('exec sleep 300 # ef-iso-app', {
      runAsUser: NOBODY, runAsGroup: NOBODY, supplementalGroups: [20],
      // Ready only when the probe itself runs as nobody.
      probes: { readiness: { ...probe, exec: { command: ['/bin/sh', '-c', `test "$(id -u)" = ${NOBODY}`] } } },
    }) });
    const status = await running('app');
    // Running is reported at spawn; setpriv switches and execs the command a moment later.
    const procStatus = () => readFileSync(`/proc/${status.pid}/status`, 'utf8');
    expect(await pollUntil(() => /^Name:\s+sleep$/m.test(procStatus()), 5_000)).toBe(true);
    expect(procStatus()).toMatch(new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'));
    expect(procStatus()).toMatch(/^CapEff:\s+0+$/m);
    const ids = await runtime.exec('app', ['/bin/sh', '-c', 'id -u; id -g; id -G; echo "home=$HOME user=${USER:-}"'], EXEC);
    expect(ids.stdout.trim().split('\n')).toEqual([String(NOBODY), String(NOBODY), `${NOBODY} 20`, 'home=/ user=']);
    expect(await pollUntil(() => runtime.statuses().get('app')?.ready === true, 10_000)).toBe(true);
  });

  it('a missing command behind the user switch is still "command not found"', async () => {
    await runtime.ensure({ name: 'gone', generation: 1, template: { ...template(''), command: 'edgefleet-no-such-command', args: [], runAsUser: NOBODY, restartPolicy: 'Never' } });
    expect(await pollUntil(() => runtime.statuses().get('gone')?.state === 'Failed', 10_000)).toBe(true);
    expect(runtime.statuses().get('gone')!.lastError).toMatch(/^command not found: "edgefleet-no-such-command"/);
  });
});

describe.skipIf(!asRoot)('a workload with a uid of its own ends whole', () => {
  const OWN_UID = 70_123; // in the range edgecore gives workloads of their own

  it('its stop ends what it left outside its process group with setsid', async () => {
    const marker = `ef-stop-${process.pid}-${Date.now()}`;
    await runtime.ensure({ name: 'app', generation: 1, template: template(`setsid sh -c 'sleep 300 # ${marker}' & exec sleep 300`, { runAsUser: OWN_UID }) });
    await running('app');
    expect(await pollUntil(() => processesWith(marker).length > 0, 5_000)).toBe(true);
    await runtime.remove('app');
    // Before, the setsid'd shell outlived the stop (the group kill cannot reach it).
    expect(await pollUntil(() => processesWith(marker).length === 0, 5_000)).toBe(true);
  });

  it('a main process that exits on its own takes what it left behind with it', async () => {
    const marker = `ef-exit-${process.pid}-${Date.now()}`;
    await runtime.ensure({ name: 'once', generation: 1, template: template(`setsid sh -c 'sleep 300 # ${marker}' & sleep 1; exit 0`, { runAsUser: OWN_UID, restartPolicy: 'Never' }) });
    expect(await pollUntil(() => runtime.statuses().get('once')?.state === 'Exited', 10_000)).toBe(true);
    expect(await pollUntil(() => processesWith(marker).length === 0, 5_000)).toBe(true);
  });
});

describe.skipIf(!pidNs)('an exec timeout ends everything the exec started', () => {
  it('children that called setsid die with the exec, and nothing of it outlives the answer', async () => {
    await runtime.ensure({ name: 'app', generation: 1, template: template('exec sleep 300', { runAsUser: NOBODY }) });
    await running('app');
    const marker = `ef-setsid-${process.pid}-${Date.now()}`;
    const result = await runtime.exec('app', ['/bin/sh', '-c', `setsid sh -c 'sleep 300 # ${marker}' & sleep 300 # ${marker}`], { ...EXEC, timeoutMs: 1_000 });
    expect(result.timedOut).toBe(true);
    // Before the fix the setsid'd shell and its sleep were still alive, as root.
    expect(await pollUntil(() => processesWith(marker).length === 0, 5_000)).toBe(true);
  });

  it('an exec that ends on its own takes what it left running with it', async () => {
    await runtime.ensure({ name: 'app', generation: 1, template: template('exec sleep 300') });
    await running('app');
    const marker = `ef-daemon-${process.pid}-${Date.now()}`;
    const result = await runtime.exec('app', ['/bin/sh', '-c', `setsid sh -c 'sleep 300 # ${marker}' & echo done`], EXEC);
    expect(result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(result.stdout.trim()).toBe('done');
    expect(await pollUntil(() => processesWith(marker).length === 0, 5_000)).toBe(true);
  });
});
