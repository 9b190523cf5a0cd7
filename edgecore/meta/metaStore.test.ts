import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  UpstreamEntrySchema, workloadName, type EdgeEvent, type SyncFrame, type Workload, type WorkloadStatus,
} from '../../protocol/index.js';
import type { WorkloadRecord } from '../runtime/runtime.js';
import { SCHEMA_VERSION } from './schema.js';
import { COALESCING_SQL } from './outbox.js';
import {
  ForeignObjectError, META_KEYS, MetaStore, RevisionRegressionError, canonicalJson, diffDesired, type MetaStoreOptions,
} from './metaStore.js';

const NODE = 'edge-1';

function workload(app: string, opts: { node?: string; generation?: number; command?: string } = {}): Workload {
  const node = opts.node ?? NODE;
  return {
    kind: 'Workload',
    metadata: { name: workloadName(app, node), resourceVersion: 1 },
    spec: {
      nodeName: node, app, generation: opts.generation ?? 1,
      template: { runtime: 'process', command: opts.command ?? '/bin/true', args: [], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] },
    },
  };
}

function snapshot(revision: number, objects: Workload[]): SyncFrame {
  return { type: 'sync', mode: 'snapshot', revision, changes: objects.map((object) => ({ op: 'put', object })) };
}

function status(state: WorkloadStatus['state'], restarts = 0): WorkloadStatus {
  return { state, restarts, generation: 1, observedAt: new Date(0).toISOString() };
}

function event(reason: string): EdgeEvent {
  return { reason, message: `${reason} happened`, type: 'Normal', time: new Date(0).toISOString() };
}

let dir: string;
let opened: MetaStore[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgefleet-meta-'));
  opened = [];
});

afterEach(() => {
  for (const store of opened) store.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(file = 'meta.db', opts?: MetaStoreOptions): MetaStore {
  const store = MetaStore.open(join(dir, file), opts);
  opened.push(store);
  return store;
}

describe('epoch and kv', () => {
  it('keeps the epoch across reopen and makes a new one for a new file', () => {
    const first = open();
    const epoch = first.epoch();
    expect(epoch).toMatch(/^[0-9a-f-]{36}$/);
    first.close();
    expect(open().epoch()).toBe(epoch);
    expect(open('other.db').epoch()).not.toBe(epoch);
  });

  it('stores key/values and keeps the file owner-only', () => {
    const store = open();
    expect(store.getValue(META_KEYS.credential)).toBeUndefined();
    store.setValue(META_KEYS.credential, 'secret-1');
    store.setValue(META_KEYS.credential, 'secret-2');
    store.close();
    expect(open().getValue(META_KEYS.credential)).toBe('secret-2');
    expect(statSync(join(dir, 'meta.db')).mode & 0o777).toBe(0o600);
  });
});

describe('applySync', () => {
  it('starts at revision 0 with nothing desired', () => {
    const store = open();
    expect(store.lastRevision()).toBe(0);
    expect(store.desiredWorkloads()).toEqual([]);
  });

  it('makes a snapshot the exact desired set', () => {
    const store = open();
    expect(store.applySync(snapshot(5, [workload('b'), workload('a')]))).toEqual({ changed: ['a', 'b'], removed: [], devicesChanged: false });
    expect(store.desiredWorkloads().map((w) => w.spec.app)).toEqual(['a', 'b']);

    const result = store.applySync(snapshot(9, [workload('b'), workload('c'), workload('a', { generation: 2 })]));
    expect(result).toEqual({ changed: ['a', 'c'], removed: [], devicesChanged: false });
    expect(store.applySync(snapshot(10, [workload('c')]))).toEqual({ changed: [], removed: ['a', 'b'], devicesChanged: false });
    expect(store.desiredWorkloads()).toEqual([workload('c')]);
    expect(store.lastRevision()).toBe(10);
  });

  it('applies delta puts and deletes (deletes name the workload object)', () => {
    const store = open();
    store.applySync(snapshot(3, [workload('a'), workload('b')]));
    const result = store.applySync({
      type: 'sync', mode: 'delta', revision: 7, changes: [
        { op: 'put', object: workload('c') },
        { op: 'put', object: workload('a', { command: '/bin/sleep' }) },
        { op: 'delete', kind: 'Workload', name: workloadName('b', NODE) },
        { op: 'delete', kind: 'Workload', name: workloadName('never-existed', NODE) },
      ],
    });
    expect(result).toEqual({ changed: ['a', 'c'], removed: ['b'], devicesChanged: false });
    expect(store.desiredWorkload('a')?.spec.template.command).toBe('/bin/sleep');
    expect(store.desiredWorkload('b')).toBeUndefined();
    expect(store.lastRevision()).toBe(7);
  });

  it('reports nothing for a resend of identical objects, whatever the key order', () => {
    const store = open();
    store.applySync(snapshot(3, [workload('a')]));
    const w = workload('a');
    const reordered: Workload = { spec: w.spec, metadata: w.metadata, kind: w.kind };
    expect(store.applySync({ type: 'sync', mode: 'delta', revision: 3, changes: [{ op: 'put', object: reordered }] }))
      .toEqual({ changed: [], removed: [], devicesChanged: false });
  });

  it('reports a put then delete of a new app in one delta as nothing', () => {
    const store = open();
    expect(store.applySync({
      type: 'sync', mode: 'delta', revision: 1, changes: [
        { op: 'put', object: workload('x') },
        { op: 'delete', kind: 'Workload', name: workloadName('x', NODE) },
      ],
    })).toEqual({ changed: [], removed: [], devicesChanged: false });
  });

  it('keeps lastRevision and objects after a crash (no close, reopen)', () => {
    const crashed = MetaStore.open(join(dir, 'meta.db'));
    crashed.applySync(snapshot(42, [workload('a')]));
    // Deliberately not closed: the second handle must see the committed state on disk.
    const reopened = open();
    expect(reopened.lastRevision()).toBe(42);
    expect(reopened.desiredWorkloads()).toEqual([workload('a')]);
    crashed.close();
  });

  it('refuses a frame older than lastRevision and changes nothing', () => {
    const store = open();
    store.applySync(snapshot(10, [workload('a')]));
    expect(() => store.applySync(snapshot(9, []))).toThrow(RevisionRegressionError);
    expect(store.lastRevision()).toBe(10);
    expect(store.desiredWorkloads()).toEqual([workload('a')]);
  });

  it('refuses objects of another node once the node name is set, rolling back earlier writes', () => {
    const store = open();
    store.setValue(META_KEYS.node, NODE);
    store.applySync(snapshot(4, [workload('a'), workload('b')]));

    // The foreign object comes last: the snapshot's delete-all and the first put already ran.
    const bad = snapshot(8, [workload('c'), workload('d', { node: 'edge-2' })]);
    expect(() => store.applySync(bad)).toThrow(ForeignObjectError);
    expect(store.lastRevision()).toBe(4);
    expect(store.desiredWorkloads().map((w) => w.spec.app)).toEqual(['a', 'b']);

    const badDelta: SyncFrame = {
      type: 'sync', mode: 'delta', revision: 8, changes: [
        { op: 'delete', kind: 'Workload', name: workloadName('a', NODE) },
        { op: 'put', object: workload('e', { node: 'edge-2' }) },
      ],
    };
    expect(() => store.applySync(badDelta)).toThrow(ForeignObjectError);
    expect(store.desiredWorkloads().map((w) => w.spec.app)).toEqual(['a', 'b']);
  });

  it('accepts any node while no node name is set', () => {
    const store = open();
    store.applySync(snapshot(1, [workload('a', { node: 'somewhere' })]));
    expect(store.desiredWorkload('a')?.spec.nodeName).toBe('somewhere');
  });

  it('rolls back when SQLite rejects a write mid-frame (two apps, one object name)', () => {
    const store = open();
    store.applySync(snapshot(2, [workload('a')]));
    const clash = workload('b');
    clash.metadata.name = workloadName('a', NODE);
    expect(() => store.applySync({
      type: 'sync', mode: 'delta', revision: 3,
      changes: [{ op: 'put', object: workload('c') }, { op: 'put', object: clash }],
    })).toThrow(/UNIQUE/);
    expect(store.lastRevision()).toBe(2);
    expect(store.desiredWorkloads()).toEqual([workload('a')]);
  });
});

describe('outbox', () => {
  it('hands out monotonic seqs that survive a crash and are never reused after acks', () => {
    const crashed = MetaStore.open(join(dir, 'meta.db'));
    const seqs = [crashed.enqueue('event', 'e', event('A')), crashed.enqueue('event', 'e', event('B'))];
    expect(seqs).toEqual([1, 2]);
    expect(crashed.ackUpTo(2)).toBe(2);
    const reopened = open();
    expect(reopened.enqueue('event', 'e', event('C'))).toBe(3);
    expect(reopened.pending(10).map((e) => e.seq)).toEqual([3]);
    crashed.close();
  });

  it('coalesces statuses per key: the old entry goes, the new one gets a new seq', () => {
    const store = open();
    store.enqueue('workloadStatus', 'a', { app: 'a', status: status('Pending') });
    store.enqueue('event', 'a', event('Started'));
    store.enqueue('workloadStatus', 'b', { app: 'b', status: status('Running') });
    const latest = store.enqueue('workloadStatus', 'a', { app: 'a', status: status('Running', 1) });
    expect(latest).toBe(4);

    const pending = store.pending(10);
    for (const entry of pending) expect(UpstreamEntrySchema.safeParse(entry).success).toBe(true);
    expect(pending.map((e) => [e.seq, e.kind, e.key])).toEqual([
      [2, 'event', 'a'], [3, 'workloadStatus', 'b'], [4, 'workloadStatus', 'a'],
    ]);
    expect(pending[2]).toEqual({ seq: 4, kind: 'workloadStatus', key: 'a', body: { app: 'a', status: status('Running', 1) } });
    expect(store.outboxStats()).toEqual({ depth: 3, dropped: 0, oldestSeq: 2 });
  });

  it('acks cumulatively and honours the pending limit', () => {
    const store = open();
    for (let i = 0; i < 5; i++) store.enqueue('event', `k${i}`, event(`R${i}`));
    expect(store.pending(2).map((e) => e.seq)).toEqual([1, 2]);
    expect(store.ackUpTo(3)).toBe(3);
    expect(store.ackUpTo(3)).toBe(0);
    expect(store.outboxStats()).toEqual({ depth: 2, dropped: 0, oldestSeq: 4 });
    expect(store.ackUpTo(100)).toBe(2);
    expect(store.outboxStats()).toEqual({ depth: 0, dropped: 0, oldestSeq: null });
    // The cloud already holds up to 100: later entries must be numbered above it.
    expect(store.enqueue('event', 'k', event('After'))).toBe(101);
  });

  it('bounds events by count, dropping the oldest and persisting the drop count', () => {
    const store = MetaStore.open(join(dir, 'meta.db'), { maxEvents: 3 });
    store.enqueue('workloadStatus', 'a', { app: 'a', status: status('Running') });
    for (let i = 1; i <= 5; i++) store.enqueue('event', 'e', event(`R${i}`));
    // Statuses are not events: they are bounded by coalescing, never dropped.
    expect(store.pending(10).map((e) => (e.kind === 'event' ? e.body.reason : e.kind)))
      .toEqual(['workloadStatus', 'R3', 'R4', 'R5']);
    expect(store.outboxStats()).toEqual({ depth: 4, dropped: 2, oldestSeq: 1 });
    store.close();

    // A lower limit on the next start applies at once; the count keeps adding up.
    const reopened = open('meta.db', { maxEvents: 1 });
    expect(reopened.outboxStats()).toEqual({ depth: 2, dropped: 4, oldestSeq: 1 });
    expect(reopened.pending(10).map((e) => e.seq)).toEqual([1, 6]);
  });

  it('keeps the spool bound exact through acks and restarts, recounting a file whose counter is off', () => {
    const store = MetaStore.open(join(dir, 'meta.db'), { maxEvents: 3 });
    for (let i = 1; i <= 3; i++) store.enqueue('event', 'e', event(`R${i}`));
    store.ackUpTo(2);
    // Two slots came free: two more fit, the third pushes out the oldest.
    store.enqueue('event', 'e', event('R4'));
    store.enqueue('event', 'e', event('R5'));
    expect(store.outboxStats()).toMatchObject({ depth: 3, dropped: 0 });
    store.enqueue('event', 'e', event('R6'));
    expect(store.pending(10).map((e) => (e.kind === 'event' ? e.body.reason : e.kind))).toEqual(['R4', 'R5', 'R6']);
    expect(store.outboxStats()).toMatchObject({ depth: 3, dropped: 1 });
    store.close();
    // A counter that disagrees with the rows (an older file, a hand edit) is rebuilt at open.
    const raw = new Database(join(dir, 'meta.db'));
    raw.prepare("UPDATE state SET value = '0' WHERE key = 'spooled'").run();
    raw.close();
    const reopened = open('meta.db', { maxEvents: 3 });
    reopened.enqueue('event', 'e', event('R7'));
    expect(reopened.pending(10).map((e) => (e.kind === 'event' ? e.body.reason : e.kind))).toEqual(['R5', 'R6', 'R7']);
    expect(reopened.outboxStats()).toMatchObject({ depth: 3, dropped: 2 });
  });

  it('drops events older than maxEventAgeMs', () => {
    let now = 1_000_000;
    const store = open('meta.db', { maxEventAgeMs: 60_000, now: () => now });
    store.enqueue('event', 'e', event('Old'));
    store.enqueue('workloadStatus', 'a', { app: 'a', status: status('Running') });
    now += 30_000;
    store.enqueue('event', 'e', event('Newer'));
    now += 20_000;
    // Nothing has expired yet: the oldest is 50 s old.
    expect(store.pending(10)).toHaveLength(3);
    now += 20_000;
    expect(store.pending(10).map((e) => (e.kind === 'event' ? e.body.reason : e.kind))).toEqual(['workloadStatus', 'Newer']);
    expect(store.outboxStats().dropped).toBe(1);
    // The clock went back: an entry stamped before the head goes when the head expires.
    now -= 45_000;
    store.enqueue('event', 'e', event('Skewed'));
    now += 62_000; // Skewed is 62 s old, but Newer, the head, only 57 s
    expect(store.pending(10).map((e) => (e.kind === 'event' ? e.body.reason : e.kind))).toEqual(['workloadStatus', 'Newer', 'Skewed']);
    now += 5_000;
    expect(store.pending(10).map((e) => (e.kind === 'event' ? e.body.reason : e.kind))).toEqual(['workloadStatus']);
    expect(store.outboxStats().dropped).toBe(3);
  });

  it('looks entries up by key only for the coalescing kinds, through the partial index (schema v3)', () => {
    open().close();
    opened.length = 0;
    const raw = new Database(join(dir, 'meta.db'));
    try {
      const indexes = raw.prepare<[], { name: string; partial: number }>('PRAGMA index_list(outbox)').all();
      expect(indexes.map((i) => [i.name, i.partial])).toEqual([['outbox_coalescing_key', 1]]);
      for (const kind of ['workloadStatus', 'twinReported']) {
        const plan = raw.prepare(`EXPLAIN QUERY PLAN DELETE FROM outbox WHERE kind = ? AND key = ? AND ${COALESCING_SQL}`).all(kind, 'a') as { detail: string }[];
        expect(plan.map((p) => p.detail).join('; ')).toMatch(/USING INDEX outbox_coalescing_key \(kind=\? AND key=\?\)/);
      }
    } finally {
      raw.close();
    }
  });

  it('moves a schema v2 file to v3 keeping its entries and their coalescing', () => {
    const store = open();
    store.enqueue('workloadStatus', 'a', { app: 'a', status: status('Pending') });
    store.enqueue('event', 'e', event('R1'));
    store.close();
    opened.length = 0;
    // What a v2 edgecore left: every row indexed by (kind, key).
    const raw = new Database(join(dir, 'meta.db'));
    raw.exec('DROP INDEX outbox_coalescing_key; CREATE INDEX outbox_kind_key ON outbox (kind, key); DROP TABLE desired_routes; PRAGMA user_version = 2;');
    raw.close();
    const reopened = open();
    reopened.enqueue('workloadStatus', 'a', { app: 'a', status: status('Running') });
    expect(reopened.pending(10).map((e) => [e.seq, e.kind])).toEqual([[2, 'event'], [3, 'workloadStatus']]);
    const check = new Database(join(dir, 'meta.db'), { readonly: true });
    try {
      expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(check.prepare<[], { name: string }>('PRAGMA index_list(outbox)').all().map((i) => i.name)).toEqual(['outbox_coalescing_key']);
    } finally {
      check.close();
    }
  });

  it('refuses an invalid entry and stores nothing', () => {
    const store = open();
    const bad = { ...event('X'), type: 'Fatal' } as unknown as EdgeEvent;
    expect(() => store.enqueue('event', 'e', bad)).toThrow(/type/);
    expect(store.outboxStats()).toEqual({ depth: 0, dropped: 0, oldestSeq: null });
    expect(store.enqueue('event', 'e', event('Ok'))).toBe(1);
  });

  it('enqueues many entries in order in one transaction, coalescing within the batch, or none if one is bad', () => {
    const store = MetaStore.open(join(dir, 'meta.db'), { maxEvents: 2 });
    opened.push(store);
    const seqs = store.enqueueMany([
      { kind: 'workloadStatus', key: 'a', body: { app: 'a', status: status('Pending') } },
      { kind: 'event', key: 'e', body: event('R1') },
      { kind: 'event', key: 'e', body: event('R2') },
      { kind: 'workloadStatus', key: 'a', body: { app: 'a', status: status('Running') } },
      { kind: 'event', key: 'e', body: event('R3') },
    ]);
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
    // The superseded status and the event past maxEvents are gone, counted as they would be one by one.
    expect(store.pending(10).map((e) => [e.seq, e.kind === 'event' ? e.body.reason : e.kind])).toEqual([[3, 'R2'], [4, 'workloadStatus'], [5, 'R3']]);
    expect(store.outboxStats()).toEqual({ depth: 3, dropped: 1, oldestSeq: 3 });

    const bad = { ...event('X'), type: 'Fatal' } as unknown as EdgeEvent;
    expect(() => store.enqueueMany([{ kind: 'event', key: 'e', body: event('fine') }, { kind: 'event', key: 'e', body: bad }])).toThrow(/type/);
    expect(store.outboxStats().depth).toBe(3);
    expect(store.enqueueMany([])).toEqual([]);
    expect(store.enqueue('event', 'e', event('Next'))).toBe(6);
  });

  it('stores bodies the caller parsed without parsing them again, and still never sends a wrong one', () => {
    const store = MetaStore.open(join(dir, 'meta.db'));
    opened.push(store);
    const bad = { ...event('X'), type: 'Fatal' } as unknown as EdgeEvent;
    // bodiesParsed: the caller vouches for its bodies (the device hub); a wrong one slips in...
    expect(store.enqueueMany([{ kind: 'event', key: 'e', body: event('A') }, { kind: 'event', key: 'e', body: bad }, { kind: 'event', key: 'e', body: event('B') }], { bodiesParsed: true })).toEqual([1, 2, 3]);
    // ...but reading it back to send drops and counts it instead of sending it.
    const unreadable: number[] = [];
    expect(store.pending(10, (seq) => unreadable.push(seq)).map((e) => [e.seq, e.kind === 'event' ? e.body.reason : e.kind])).toEqual([[1, 'A'], [3, 'B']]);
    expect(unreadable).toEqual([2]);
    expect(store.outboxStats()).toMatchObject({ depth: 2, dropped: 1 });
  });

  it('rejects nonsensical limits', () => {
    expect(() => open('meta.db', { maxEvents: 0 })).toThrow(RangeError);
  });
});

describe('records', () => {
  it('saves, replaces, removes and loads across reopen', () => {
    const store = open();
    const a: WorkloadRecord = { name: 'a', pid: 1234, startTicks: 99, status: status('Running') };
    const b: WorkloadRecord = { name: 'b', pid: null, startTicks: null, status: status('Exited') };
    store.records.save(b);
    store.records.save(a);
    store.records.save({ ...a, pid: 4321 });
    store.records.save({ name: 'c', pid: null, startTicks: null, status: status('Stopped') });
    store.records.remove('c');
    store.records.remove('never-saved');
    store.close();
    expect(open().records.load()).toEqual([{ ...a, pid: 4321 }, b]);
  });
});

describe('pure helpers', () => {
  it('canonicalJson ignores key order but not array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe(canonicalJson({ a: { c: null, d: [2, 1] }, b: 1 }));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });

  it('diffDesired sorts and classifies', () => {
    const before = new Map<string, string | undefined>([['z', 'x'], ['a', 'x'], ['m', undefined], ['k', 'same']]);
    const after = new Map<string, string | undefined>([['z', undefined], ['a', 'y'], ['m', 'new'], ['k', 'same']]);
    expect(diffDesired(before, after)).toEqual({ changed: ['a', 'm'], removed: ['z'], devicesChanged: false });
  });
});
