import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProcessTemplate, WorkloadStatus } from '../../protocol/index.js';
import { isLive, pollUntil } from './processGroup.js';
import { ProcessRuntime } from './processRuntime.js';
import type { RecordKeeper, WorkloadRecord } from './runtime.js';

/**
 * Process workloads across an edgecore restart for an agent upgrade: one runtime hands its
 * workloads over (`shutdown({ stopWorkloads: false })`), the next adopts them with the same pid,
 * reads on what they print (also what they printed with no edgecore there), and supervises them.
 */

class MemoryRecords implements RecordKeeper {
  readonly byName = new Map<string, WorkloadRecord>();
  save(record: WorkloadRecord): void { this.byName.set(record.name, structuredClone(record)); }
  remove(name: string): void { this.byName.delete(name); }
  load(): WorkloadRecord[] { return [...this.byName.values()].map((r) => structuredClone(r)); }
}

let dir: string;
let records: MemoryRecords;
let live: ProcessRuntime[];
const pids: number[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'handover-'));
  records = new MemoryRecords();
  live = [];
});
afterEach(async () => {
  await Promise.all(live.map((rt) => rt.shutdown({ stopWorkloads: true })));
  for (const pid of pids.splice(0)) if (isLive(pid)) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
  rmSync(dir, { recursive: true, force: true });
});

function runtime(): ProcessRuntime {
  const rt = new ProcessRuntime({ logDir: join(dir, 'logs'), records, backoff: { initialMs: 100, maxMs: 1000, resetAfterMs: 60_000 }, stopGraceMs: 1000 });
  live.push(rt);
  return rt;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const shell = (script: string): ProcessTemplate => ({
  runtime: 'process', command: '/bin/sh', args: ['-c', script], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [],
});
// Prints a numbered line every 50 ms: output keeps coming while no edgecore reads it.
const COUNTER = shell('i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.05; done');

async function running(rt: ProcessRuntime, name: string, test: (s: WorkloadStatus) => boolean = () => true): Promise<WorkloadStatus> {
  let found: WorkloadStatus | undefined;
  const ok = await pollUntil(() => {
    const s = rt.statuses().get(name);
    if (s?.state === 'Running' && test(s)) found = s;
    return found !== undefined;
  }, 20_000);
  if (!ok || !found) throw new Error(`${name} not running: ${JSON.stringify(rt.statuses().get(name))}`);
  return found;
}

async function handOver(rt: ProcessRuntime): Promise<void> {
  await rt.shutdown({ stopWorkloads: false });
  live.splice(live.indexOf(rt), 1);
}

describe('process workloads handed over to the next edgecore', () => {
  it('are adopted with the same pid, their output read on (none lost while no edgecore read it), then supervised', async () => {
    const a = runtime();
    await a.ensure({ name: 'counter', generation: 1, template: COUNTER });
    const pid = (await running(a, 'counter')).pid!;
    pids.push(pid);
    await sleep(300);
    await handOver(a);
    await sleep(600); // no edgecore: the workload goes on printing into its FIFO
    expect(isLive(pid)).toBe(true);

    const b = runtime();
    await b.recover();
    expect(isLive(pid)).toBe(true);
    await b.ensure({ name: 'counter', generation: 1, template: COUNTER });
    expect((await running(b, 'counter')).pid).toBe(pid);
    await sleep(500);
    const lines = await b.readLogs('counter', 10_000);
    const numbers = lines.map((l) => Number(/^line (\d+)$/.exec(l)?.[1]));
    // Every line once, in order, across the handover: 1, 2, 3, … with no gap.
    expect(numbers.length).toBeGreaterThan(15);
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));

    // Supervised again: stopping it ends it; its exit is seen although it is not b's child.
    await b.remove('counter');
    expect(isLive(pid)).toBe(false);
  });

  it('ends a handed-over workload whose template changed meanwhile and starts the new one; sees an adopted one exit and restarts it', async () => {
    const a = runtime();
    await a.ensure({ name: 'changed', generation: 1, template: shell('exec sleep 300') });
    await a.ensure({ name: 'short', generation: 1, template: shell('sleep 1.5') });
    const old = (await running(a, 'changed')).pid!;
    const short = (await running(a, 'short')).pid!;
    pids.push(old, short);
    await handOver(a);

    const b = runtime();
    await b.recover();
    await b.ensure({ name: 'changed', generation: 2, template: shell('exec sleep 301') });
    await b.ensure({ name: 'short', generation: 1, template: shell('sleep 1.5') });
    const fresh = (await running(b, 'changed')).pid!;
    pids.push(fresh);
    expect(fresh).not.toBe(old);
    expect(isLive(old)).toBe(false);
    expect((await running(b, 'short')).pid).toBe(short);
    // It exits on its own (not b's child): seen by its pid, restarted under Always with a new one.
    const again = await running(b, 'short', (s) => s.pid !== short);
    pids.push(again.pid!);
    expect(again.restarts).toBe(1);
  });

  it('after a crash (no handover) the previous workloads are still ended, as before', async () => {
    const a = runtime();
    await a.ensure({ name: 'left', generation: 1, template: shell('exec sleep 300') });
    const pid = (await running(a, 'left')).pid!;
    pids.push(pid);
    live.splice(live.indexOf(a), 1); // a "crashes": no shutdown at all
    const b = runtime();
    await b.recover();
    expect(isLive(pid)).toBe(false);
  });
});
