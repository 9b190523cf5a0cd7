import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceSchema, WorkloadSchema, workloadName, type SyncFrame } from '../../protocol/index.js';
import { META_KEYS, MetaStore } from './metaStore.js';

/**
 * Rows this edgecore cannot read (written under an older schema, or edited by hand). Desired
 * objects are skipped by every reader and listed apart by readDesiredWorkloads() and
 * readDesiredDevices(), and a replay of the cloud's state replaces them; outbox entries are dropped and counted; runtime records keep what
 * recovery needs. Before, one such row made its reader throw: edgecore could not start, its
 * status page failed, or the cloud link stopped sending.
 */

const keeper = WorkloadSchema.parse({
  kind: 'Workload', metadata: { name: workloadName('keeper', 'edge-1'), resourceVersion: 1 },
  spec: { nodeName: 'edge-1', app: 'keeper', generation: 1, template: { runtime: 'process', command: '/bin/true' } },
});
const other = WorkloadSchema.parse({ ...keeper, metadata: { name: workloadName('other', 'edge-1'), resourceVersion: 1 }, spec: { ...keeper.spec, app: 'other' } });
const gauge = DeviceSchema.parse({ kind: 'Device', metadata: { name: 'gauge', generation: 1 }, spec: { model: 'm', nodeName: 'edge-1', protocol: { name: 'virtual' } } });
const frame = (mode: SyncFrame['mode'], revision: number): SyncFrame => ({
  type: 'sync', mode, revision, changes: [keeper, other, gauge].map((object) => ({ op: 'put' as const, object })),
});

let dir: string;
let meta: MetaStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ef-meta-unreadable-'));
  meta = MetaStore.open(join(dir, 'edge.db'));
});
afterEach(() => { meta.close(); rmSync(dir, { recursive: true, force: true }); });

describe('MetaStore: stored desired objects it cannot read', () => {
  const unreadableDesired = () => [...meta.readDesiredWorkloads().unreadable, ...meta.readDesiredDevices().unreadable];
  beforeEach(() => {
    meta.setValue(META_KEYS.node, 'edge-1');
    meta.applySync(frame('snapshot', 7));
    // An older edgecore's row (a field this schema does not know), and one that is not JSON at all.
    meta.database.prepare("UPDATE desired SET json = json_set(json, '$.spec.template.runtime', 'wasm') WHERE app = 'keeper'").run();
    meta.database.prepare("UPDATE desired_devices SET json = '{\"kind\":' WHERE name = 'gauge'").run();
  });

  it('skips them in every reader and names them, with what is wrong', () => {
    expect(meta.desiredWorkloads().map((w) => w.spec.app)).toEqual(['other']);
    expect(meta.desiredWorkload('keeper')).toBeUndefined();
    expect(meta.desiredWorkload('other')?.spec.app).toBe('other');
    expect(meta.desiredDevices()).toEqual([]);
    const rows = unreadableDesired();
    expect(rows.map(({ kind, name }) => ({ kind, name }))).toEqual([{ kind: 'Workload', name: 'keeper' }, { kind: 'Device', name: 'gauge' }]);
    expect(rows[0]!.error).toMatch(/^spec\.template\.runtime: /);
    expect(rows[1]!.error).toMatch(/^not JSON: /);
  });

  it('after the sync cursor is reset, a replay from the start writes them again', () => {
    meta.resetSyncCursor();
    expect(meta.lastRevision()).toBe(0);
    // What the cloud sends after a hello with revision 0: its changes from the start (or a snapshot).
    meta.applySync(frame('delta', 9));
    expect(unreadableDesired()).toEqual([]);
    expect(meta.desiredWorkloads().map((w) => w.spec.app)).toEqual(['keeper', 'other']);
    expect(meta.desiredDevices().map((d) => d.metadata.name)).toEqual(['gauge']);
    expect(meta.lastRevision()).toBe(9);
  });

  it('without the reset, an older replay is refused as before and changes nothing', () => {
    expect(() => meta.applySync(frame('delta', 3))).toThrow(/older than the committed revision 7/);
    expect(unreadableDesired()).toHaveLength(2);
  });
});

describe('MetaStore: outbox entries and runtime records it cannot read', () => {
  const telemetry = (value: number) => ({ kind: 'telemetry' as const, key: 'gauge', body: { device: 'gauge', samples: [{ t: '2026-11-22T10:00:00.000Z', values: { level: value } }] } });
  const spooled = () => meta.database.prepare<[], { value: string }>("SELECT value FROM state WHERE key = 'spooled'").get()!.value;

  it('drops an unreadable outbox entry, counts it, and sends the entries after it', () => {
    meta.enqueueMany([telemetry(1), telemetry(2), telemetry(3), telemetry(4)]);
    meta.database.prepare("UPDATE outbox SET body = '{' WHERE seq = 1").run();
    meta.database.prepare("UPDATE outbox SET body = json_set(body, '$.samples', json('[]')) WHERE seq = 3").run();
    const told: [number, string][] = [];
    // A first page of nothing but the unreadable entry does not hide the readable one behind it.
    expect(meta.pending(1, (seq, error) => told.push([seq, error])).map((e) => e.seq)).toEqual([2]);
    expect(meta.pending(10, (seq, error) => told.push([seq, error])).map((e) => e.seq)).toEqual([2, 4]);
    expect(told.map(([seq]) => seq)).toEqual([1, 3]);
    expect(told[0]![1]).toMatch(/^body is not JSON: /);
    expect(told[1]![1]).toMatch(/^body\.samples: /);
    expect(meta.outboxStats()).toMatchObject({ depth: 2, dropped: 2 });
    expect(spooled()).toBe('2');
  });

  it('loads a runtime record it cannot read with its pid and start ticks, so recovery still stops that process', () => {
    const status = { state: 'Running' as const, restarts: 0, generation: 1, observedAt: '2026-11-22T10:00:00.000Z' };
    meta.records.save({ name: 'keeper', pid: 4321, startTicks: 99, status });
    meta.records.save({ name: 'other', pid: 4322, startTicks: 100, status });
    meta.database.prepare("UPDATE records SET json = json_set(json, '$.status.state', 'Hibernating') WHERE name = 'keeper'").run();
    meta.database.prepare("UPDATE records SET json = 'garbage' WHERE name = 'other'").run();
    expect(meta.records.load()).toEqual([
      { name: 'keeper', pid: 4321, startTicks: 99, status: { state: 'Stopped', restarts: 0, generation: 0, observedAt: '1970-01-01T00:00:00.000Z' } },
      { name: 'other', pid: null, startTicks: null, status: { state: 'Stopped', restarts: 0, generation: 0, observedAt: '1970-01-01T00:00:00.000Z' } },
    ]);
  });
});
