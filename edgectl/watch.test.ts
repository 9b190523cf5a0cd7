import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Workload } from '../protocol/index.js';
import { thermostatDevice, thermostatModel } from '../test/helpers/cloudcore/deviceFixtures.js';
import { ADMIN_TOKEN, startTestApi, type TestApi } from '../test/helpers/cloudcore/testServer.js';
import { waitFor } from '../test/helpers/wait.js';
import { renderTable } from './format.js';
import { run } from './program.js';
import { TableStream } from './tableStream.js';

/** `edgectl get devices|nodes|workloads -w` against the real cloudcore API over real HTTP, its watch streams included. */

let api: TestApi;
let dir: string;

/** Starts edgectl and lets the test read its output while it runs. */
function start(args: string[]) {
  const io = { out: '', err: '' };
  const done = run(args, {
    stdout: (s) => { io.out += s; }, stderr: (s) => { io.err += s; },
    env: { EF_SERVER: api.origin, EF_TOKEN: ADMIN_TOKEN }, homeDir: dir,
  });
  return { io, done };
}

async function post(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${api.origin}/api/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(201);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgectl-watch-'));
  api = await startTestApi();
  await post('/devicemodels', thermostatModel());
  await post('/tokens', { node: 'edge-1', ttlSeconds: 600 }); // the devices' node exists: ONLINE is <unknown> until it reports
  await post('/devices', thermostatDevice('therm-1'));
});

afterAll(async () => {
  await api.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('edgectl get devices -w', () => {
  it('prints the table, then an aligned row per change, in table and json form, until cloudcore ends the stream', async () => {
    const table = start(['get', 'devices', '-w']);
    const json = start(['get', 'devices', '-w', '-o', 'json', '--node', 'edge-1']);
    await waitFor('the first table', () => table.io.out.includes('therm-1'));
    await waitFor('the first json event', () => json.io.out.includes('therm-1'));

    // The edge reports it online (what the hub writes), a device is added, one deleted.
    const device = (await api.store.get('Device', 'therm-1'))!;
    await api.store.update({ ...device, status: { twin: { reported: { temperature: 21 }, version: 1, metadata: {} }, online: true, lastSeen: new Date().toISOString(), observedGeneration: 1 } });
    await post('/devices', thermostatDevice('therm-22-with-a-long-name'));
    await api.store.delete('Device', 'therm-1');
    await waitFor('three changes', () => table.io.out.trimEnd().split('\n').length === 5);

    const lines = table.io.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+NODE\s+MODEL\s+PROTOCOL\s+ONLINE\s+DESIRED\/REPORTED$/);
    expect(lines[1]).toMatch(/^therm-1\s+edge-1\s+thermostat\s+modbus\s+<unknown>\s+\d+\/-$/);
    expect(lines[2]).toMatch(/^therm-1\s+edge-1\s+thermostat\s+modbus\s+yes\s+\d+\/1$/);
    expect(lines[3]).toMatch(/^therm-22-with-a-long-name\s+edge-1/);
    expect(lines[4]).toMatch(/^therm-1\s+edge-1\s+thermostat\s+modbus\s+<deleted>/);
    // Rows keep the columns of the lines before them: NODE starts where it did in the header.
    expect(lines[2]!.indexOf('edge-1')).toBe(lines[0]!.indexOf('NODE'));

    await waitFor('four json events', () => json.io.out.trimEnd().split('\n').length === 4);
    const events = json.io.out.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string }; status?: { online: boolean } } });
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED therm-1', 'MODIFIED therm-1', 'ADDED therm-22-with-a-long-name', 'DELETED therm-1',
    ]);
    expect(events[1]!.object.status?.online).toBe(true);

    await api.close();
    expect(await table.done).toBe(0);
    expect(await json.done).toBe(0);
    expect(table.io.err).toBe('');
  });
});

describe('edgectl get nodes -w and get workloads -w', () => {
  it('print a row per change of a node and of a workload, a deleted one marked', async () => {
    // The test before ended its API's streams by closing it: a fresh one (closed in afterAll).
    api = await startTestApi();
    await post('/tokens', { node: 'edge-9', ttlSeconds: 600 });
    const template = { runtime: 'process' as const, command: '/bin/true', args: [], env: {}, restartPolicy: 'Always' as const, probes: {}, configs: [], secrets: [] };
    const workload: Workload = { kind: 'Workload', metadata: { name: 'web.edge-9' }, spec: { nodeName: 'edge-9', app: 'web', generation: 1, template } };
    await api.store.create(workload);
    const nodes = start(['get', 'nodes', '-w']);
    const workloads = start(['get', 'workloads', '-w', '--node', 'edge-9']);
    await waitFor('both tables', () => nodes.io.out.includes('edge-9') && workloads.io.out.includes('web.edge-9'));

    const labelled = await fetch(`${api.origin}/api/v1/nodes/edge-9`, {
      method: 'PATCH', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { labels: { zone: 'north' } } }),
    });
    expect(labelled.status).toBe(200);
    const stored = (await api.store.get('Workload', 'web.edge-9'))!;
    await api.store.update({ ...stored, status: { state: 'Running', restarts: 1, generation: 1, observedAt: new Date().toISOString() } });
    await api.store.delete('Workload', 'web.edge-9');
    await waitFor('node relabelled', () => nodes.io.out.includes('zone=north'));
    await waitFor('workload running, then deleted', () => workloads.io.out.trimEnd().split('\n').length === 4);

    const nodeLines = nodes.io.out.trimEnd().split('\n');
    expect(nodeLines[0]).toMatch(/^NAME\s+STATUS\s+AGE/);
    expect(nodeLines.at(-1)).toMatch(/^edge-9\s+Pending\s+.*zone=north$/);
    const workloadLines = workloads.io.out.trimEnd().split('\n');
    expect(workloadLines[1]).toMatch(/^web\.edge-9\s+edge-9\s+web\s+Pending/);
    expect(workloadLines[2]).toMatch(/^web\.edge-9\s+edge-9\s+web\s+Running\s+1/);
    expect(workloadLines[3]).toMatch(/^web\.edge-9\s+edge-9\s+web\s+<deleted>/);

    await api.close();
    expect(await nodes.done).toBe(0);
    expect(await workloads.done).toBe(0);
  });
});

describe('TableStream', () => {
  it('starts exactly as renderTable prints the same rows', () => {
    const rows = [['a', 'long value', 'x'], ['bbbbbb', 'v', '']];
    expect(new TableStream(['NAME', 'VALUE', 'Z']).start(rows)).toBe(renderTable(['NAME', 'VALUE', 'Z'], rows));
  });

  it('prints later rows at the widths so far, widening a column only from the row that needs it', () => {
    const stream = new TableStream(['NAME', 'NODE']);
    expect(stream.start([['a', 'n1']])).toBe('NAME   NODE\na      n1\n');
    expect(stream.row(['bb', 'n2'])).toBe('bb     n2\n');
    expect(stream.row(['a-longer-name', 'n3'])).toBe('a-longer-name   n3\n');
    expect(stream.row(['c', 'n4'])).toBe('c               n4\n');
  });
});
