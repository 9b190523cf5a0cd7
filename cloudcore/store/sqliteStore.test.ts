import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Kind, Workload } from '../../protocol/index.js';
import { storeConformanceSuite, type MakeStoreOptions, type StoreUnderTest } from '../../test/store/conformance.js';
import { makeApp, makeEdgeEvent, makeNode, makeWorkload } from '../../test/store/fixtures.js';
import { newKeyFileText, parseKeyFile, SecretSealer } from './secretSealing.js';
import { openSqliteStore, type SqliteStore } from './sqliteStore.js';
import { ConflictError, GoneError, StoreError, type WatchEvent } from './store.js';

async function makeSqliteHarness(opts: MakeStoreOptions = {}, sealer?: SecretSealer): Promise<StoreUnderTest & { store: SqliteStore; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'edgefleet-store-'));
  const path = join(dir, 'state', 'store.db');
  const harness = {
    path,
    store: await openSqliteStore({ path, maxEvents: opts.maxEvents, sealer }),
    async reopen(): Promise<SqliteStore> {
      await harness.store.close();
      harness.store = await openSqliteStore({ path, maxEvents: opts.maxEvents, sealer });
      return harness.store;
    },
    async cleanup(): Promise<void> {
      await harness.store.close();
      await rm(dir, { recursive: true, force: true });
    },
    async makeUnreadable(kind: Kind, name: string): Promise<void> {
      // A second connection, as a hand edit would be: cut the body off mid-JSON.
      const db = new Database(path);
      try {
        db.prepare('UPDATE objects SET body = substr(body, 1, 40) WHERE kind = ? AND name = ?').run(kind, name);
      } finally {
        db.close();
      }
    },
  };
  return harness;
}

storeConformanceSuite('sqlite', makeSqliteHarness, { compaction: true });
// As cloudcore opens it: Secret bodies sealed at rest.
const sealer = new SecretSealer(parseKeyFile(newKeyFileText(), 'test key'));
storeConformanceSuite('sqlite, Secrets sealed', (opts) => makeSqliteHarness(opts, sealer), { compaction: true });

describe('SqliteStore specifics', () => {
  const harnesses: StoreUnderTest[] = [];
  async function open(opts: MakeStoreOptions = {}) {
    const harness = await makeSqliteHarness(opts);
    harnesses.push(harness);
    return harness;
  }
  /** A second, read-only connection to inspect what is on disk. */
  function inspect(path: string): Database.Database {
    return new Database(path, { readonly: true });
  }
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.cleanup();
  });

  it('starts at revision 0 and counts every write exactly once', async () => {
    const { store } = await open();
    expect(await store.revision()).toBe(0);
    expect(await store.compactedRevision()).toBe(0);
    const app = await store.create(makeApp('web'));
    const node = await store.create(makeNode('node-a'));
    await expect(store.create(makeNode('node-a'))).rejects.toBeInstanceOf(ConflictError);
    const deleted = await store.delete('App', 'web');
    expect([app, node, deleted].map((o) => o.metadata.resourceVersion)).toEqual([1, 2, 3]);
    expect(await store.revision()).toBe(3);
  });

  it('uses WAL mode and keeps objects, the node column and the event log in step', async () => {
    const { store, path } = await open();
    const app = await store.create(makeApp('web'));
    const wl = await store.create(makeWorkload(app, 'node-a'));
    await expect(store.update({ ...wl, metadata: { ...wl.metadata, resourceVersion: 1 } })).rejects.toBeInstanceOf(ConflictError);
    await store.delete('App', 'web');
    expect(existsSync(`${path}-wal`)).toBe(true);

    const db = inspect(path);
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.prepare('SELECT kind, name, node, resource_version FROM objects').all())
        .toEqual([{ kind: 'Workload', name: 'web.node-a', node: 'node-a', resource_version: 2 }]);
      // The rejected update left no event behind: the log has exactly one row per revision.
      expect(db.prepare('SELECT revision, kind, name, node, type FROM events ORDER BY revision').all()).toEqual([
        { revision: 1, kind: 'App', name: 'web', node: null, type: 'ADDED' },
        { revision: 2, kind: 'Workload', name: 'web.node-a', node: 'node-a', type: 'ADDED' },
        { revision: 3, kind: 'App', name: 'web', node: null, type: 'DELETED' },
      ]);
      expect(db.prepare('SELECT revision, compacted_revision FROM meta').get()).toEqual({ revision: 3, compacted_revision: 0 });
      const deletedBody = db.prepare<[], { body: string }>('SELECT body FROM events WHERE revision = 3').get()!.body;
      expect(JSON.parse(deletedBody)).toMatchObject({ kind: 'App', metadata: { name: 'web', resourceVersion: 3 } });
    } finally {
      db.close();
    }
  });

  it('compacts the event log to the newest maxEvents and reports the compacted revision', async () => {
    const harness = await open({ maxEvents: 10 });
    for (let i = 0; i < 25; i++) await harness.store.create(makeNode(`node-${i}`));
    expect(await harness.store.compactedRevision()).toBe(15);
    await expect(harness.store.watch({ fromRevision: 14 }, () => {})).rejects.toBeInstanceOf(GoneError);
    await expect(harness.store.watch({ kind: 'Node', fromRevision: 0 }, () => {})).rejects.toBeInstanceOf(GoneError);

    const replayed: number[] = [];
    const watch = await harness.store.watch({ fromRevision: 15 }, (e) => replayed.push(e.revision));
    expect(replayed).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    watch.close();
    expect((await harness.store.list('Node')).items).toHaveLength(25);

    // Reopening with a smaller budget compacts right away; the revision carries on.
    await harness.store.close();
    harness.store = await openSqliteStore({ path: harness.path, maxEvents: 3 });
    expect(await harness.store.compactedRevision()).toBe(22);
    expect((await harness.store.create(makeNode('node-late'))).metadata.resourceVersion).toBe(26);
    expect(await harness.store.compactedRevision()).toBe(23);
    const db = inspect(harness.path);
    try {
      expect(db.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 3 });
    } finally {
      db.close();
    }
  });

  it('a watch log entry it cannot read compacts the log through it: replays from before it get GoneError naming it, later ones work', async () => {
    const { store, path } = await open();
    for (let i = 1; i <= 5; i++) await store.create(makeNode(`node-${i}`));
    const db = new Database(path);
    try {
      db.prepare('UPDATE events SET body = substr(body, 1, 25) WHERE revision = 3').run();
    } finally {
      db.close();
    }
    const seen: number[] = [];
    const error = await store.watch({ fromRevision: 1 }, (e) => seen.push(e.revision)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GoneError);
    expect((error as Error).message).toMatch(/^revision 1 cannot be replayed: the watch log entry at revision 3 \(Node "node-3"\) cannot be read \(not JSON/);
    expect(seen).toEqual([]); // nothing half-delivered
    expect(await store.compactedRevision()).toBe(3);
    await expect(store.watch({ kind: 'Node', fromRevision: 0 }, () => {})).rejects.toBeInstanceOf(GoneError);
    const watch = await store.watch({ fromRevision: 3 }, (e) => seen.push(e.revision));
    expect(seen).toEqual([4, 5]);
    watch.close();
    // The objects themselves are untouched: a list (what a GoneError asks for) has all five.
    expect((await store.list('Node')).items).toHaveLength(5);
  });

  it('delivers live events before the write resolves, in order, also when a listener writes', async () => {
    const { store } = await open();
    const app = makeApp('web');
    // A scheduler-like listener: every new Node gets a Workload, written from inside the callback.
    const scheduler = await store.watch({ kind: 'Node', fromRevision: 0 }, (e) => {
      if (e.type === 'ADDED') void store.create(makeWorkload(app, e.object.metadata.name));
    });
    const seen: string[] = [];
    const all = await store.watch({ fromRevision: 0 }, (e) => seen.push(`${e.revision} ${e.type} ${e.object.kind}`));
    await store.create(makeNode('node-a'));
    expect(seen).toEqual(['1 ADDED Node', '2 ADDED Workload']);
    await store.create(makeNode('node-b'));
    expect(seen).toEqual(['1 ADDED Node', '2 ADDED Workload', '3 ADDED Node', '4 ADDED Workload']);
    scheduler.close();
    all.close();
  });

  it('rejects a bad fromRevision and every call after close; close ends open watches', async () => {
    const harness = await open();
    const { store } = harness;
    await expect(store.watch({ fromRevision: -1 }, () => {})).rejects.toMatchObject({ statusCode: 400 });
    await expect(store.watch({ fromRevision: 1.5 }, () => {})).rejects.toBeInstanceOf(StoreError);
    await store.watch({ fromRevision: 0 }, () => {});
    await store.watch({ node: 'node-a', fromRevision: 0 }, () => {});
    expect(store.watchCount).toBe(2);
    await store.close();
    expect(store.watchCount).toBe(0);
    await expect(store.get('App', 'web')).rejects.toBeInstanceOf(StoreError);
    await expect(store.create(makeApp('web'))).rejects.toBeInstanceOf(StoreError);
  });

  it('sustains 10,000 single-object writes', async () => {
    const { store } = await open();
    const app = await store.create(makeApp('web'));
    const started = performance.now();
    let wl = await store.create(makeWorkload(app, 'node-a'));
    for (let i = 0; i < 4_999; i++) await store.create(makeNode(`node-${i}`));
    for (let i = 0; i < 5_000; i++) {
      wl = await store.update({ ...wl, metadata: { ...wl.metadata, annotations: { i: String(i) } } });
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`sqlite store: 10,000 writes in ${seconds.toFixed(2)} s (${Math.round(10_000 / seconds)} writes/s)`);
    expect(await store.revision()).toBe(10_001);
  });

  it('5,000 writes with 2,000 per-node watches deliver each change only to its node', async () => {
    const { store } = await open();
    const nodeCount = 2_000;
    const nodes = Array.from({ length: nodeCount }, (_, i) => `node-${i}`);
    const received = new Map<string, WatchEvent[]>(nodes.map((n) => [n, []]));
    for (const node of nodes) {
      await store.watch({ node, fromRevision: 0 }, (e) => received.get(node)!.push(e));
    }
    const workloadEvents: WatchEvent[] = [];
    await store.watch({ kind: 'Workload', fromRevision: 0 }, (e) => workloadEvents.push(e));

    const app = await store.create(makeApp('web'));
    const expected = new Map<string, number>();
    const current = new Map<string, Workload>();
    for (let i = 0; i < 5_000; i++) {
      const node = nodes[(i * 7919) % nodeCount]!; // scattered, uneven: some nodes get 3 writes, others 2
      const existing = current.get(node);
      const written = existing
        ? await store.update({ ...existing, metadata: { ...existing.metadata, annotations: { write: String(i) } } })
        : await store.create(makeWorkload(app, node));
      current.set(node, written);
      if (i % 10 === 0) {
        await store.create(makeEdgeEvent(`e${i}.${node}`, node));
        expected.set(node, (expected.get(node) ?? 0) + 1);
      }
      expected.set(node, (expected.get(node) ?? 0) + 1);
    }

    let delivered = 0;
    for (const node of nodes) {
      const events = received.get(node)!;
      delivered += events.length;
      expect(events.length, node).toBe(expected.get(node) ?? 0);
      for (const e of events) {
        const boundTo = e.object.kind === 'Workload' ? e.object.spec.nodeName : e.object.kind === 'Event' ? e.object.spec.node : undefined;
        expect(boundTo).toBe(node);
      }
    }
    expect(delivered).toBe(5_500);
    expect(workloadEvents).toHaveLength(5_000);
    expect(store.watchCount).toBe(nodeCount + 1);
  });
});
