import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppSchema, NodeSchema, WorkloadSchema, type App, type Kind } from '../../protocol/index.js';
import { ConflictError, NotFoundError, type Store } from '../../cloudcore/store/store.js';
import { makeApp, makeEdgeEvent, makeNode, makeWorkload, runningStatus, waitFor } from './fixtures.js';
import { rebindConformanceTests } from './rebindConformance.js';
import { secretConformanceTests } from './secretConformance.js';
import { unreadableConformanceTests } from './unreadableConformance.js';
import { watchConformanceTests } from './watchConformance.js';

/**
 * The contract every `Store` backend must meet. A backend's test file calls
 * `storeConformanceSuite('sqlite', factory)`; the suite registers its own describe/it blocks.
 *
 * Written so a backend that is not a single process (one over etcd, say) can pass: revisions are only
 * required to increase (other writers may bump a shared counter), the store need not start at
 * revision 0, and watch events are awaited by polling rather than expected synchronously.
 */

export interface StoreUnderTest {
  /** An open store over fresh, empty state for this test. */
  store: Store;
  /** Closes the current store and frees everything it used (files, namespaces, ...). */
  cleanup(): Promise<void>;
  /**
   * Closes the current store and opens a new one over the same persisted state; after this,
   * `cleanup` must clean up the new one. Omit if the backend cannot; persistence tests are skipped.
   */
  reopen?(): Promise<Store>;
  /**
   * Damages one stored object in the backend itself, as a torn write or a hand edit would, so
   * the store can no longer read it. Omit if the backend cannot; those tests are skipped.
   */
  makeUnreadable?(kind: Kind, name: string): Promise<void>;
}

export interface MakeStoreOptions {
  /** Keep at most this many events for watch replay (only used when `compaction` is declared). */
  maxEvents?: number;
}

export type MakeStore = (opts?: MakeStoreOptions) => Promise<StoreUnderTest>;

export interface ConformanceOptions {
  /** The backend honours `maxEvents` and compacts its event log; enables the GoneError tests. */
  compaction?: boolean;
}

/** Per-test access to the store under test, shared with the watch half of the suite. */
export interface SuiteContext {
  readonly store: Store;
  readonly harness: StoreUnderTest;
  /** For tests that need a second, differently configured store; cleaned up after the test. */
  makeExtra(opts: MakeStoreOptions): Promise<StoreUnderTest>;
}

export function storeConformanceSuite(name: string, makeStore: MakeStore, options: ConformanceOptions = {}): void {
  describe(`Store conformance: ${name}`, () => {
    let harness: StoreUnderTest | undefined;
    let extras: StoreUnderTest[] = [];
    const ctx: SuiteContext = {
      get store() { return ctx.harness.store; },
      get harness() {
        if (!harness) throw new Error('store harness not set up');
        return harness;
      },
      async makeExtra(opts) {
        const extra = await makeStore(opts);
        extras.push(extra);
        return extra;
      },
    };

    beforeEach(async () => {
      harness = await makeStore();
    });
    afterEach(async () => {
      const toClean = [...extras, ...(harness ? [harness] : [])];
      extras = [];
      harness = undefined;
      for (const h of toClean) await h.cleanup();
    });

    crudConformanceTests(ctx);
    watchConformanceTests(ctx, options);
    rebindConformanceTests(ctx);
    persistenceConformanceTests(ctx);
    unreadableConformanceTests(ctx);
    secretConformanceTests(ctx);
  });
}

function crudConformanceTests(ctx: SuiteContext): void {
  describe('revisions', () => {
    it('every write gets a higher revision, one counter across kinds, stamped as resourceVersion', async () => {
      const { store } = ctx;
      const start = await store.revision();
      const app = await store.create(makeApp('web'));
      const node = await store.create(makeNode('node-a'));
      const updated = await store.update({ ...app, metadata: { ...app.metadata, labels: { team: 'ops' } } });
      const deleted = await store.delete('Node', 'node-a');
      const revisions = [start, app, node, updated, deleted].map((r) => typeof r === 'number' ? r : r.metadata.resourceVersion!);
      for (let i = 1; i < revisions.length; i++) expect(revisions[i]).toBeGreaterThan(revisions[i - 1]!);
      expect(await store.revision()).toBeGreaterThanOrEqual(deleted.metadata.resourceVersion!);
    });

    it('a failed write does not move the revision', async () => {
      const { store } = ctx;
      await store.create(makeApp('web'));
      const before = await store.revision();
      await expect(store.create(makeApp('web'))).rejects.toBeInstanceOf(ConflictError);
      await expect(store.update(makeApp('missing'))).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.revision()).toBe(before);
    });
  });

  describe('create, get, list', () => {
    it('create sets uid, creationTimestamp, generation 1 and resourceVersion; the result stays schema-valid', async () => {
      const { store } = ctx;
      const input = makeApp('web');
      const inputCopy = structuredClone(input);
      const created = await store.create(input);
      expect(input).toEqual(inputCopy); // the caller's object is not mutated
      expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(Number.isNaN(Date.parse(created.metadata.creationTimestamp!))).toBe(false);
      expect(created.metadata.generation).toBe(1);
      expect(created.metadata.resourceVersion).toBeGreaterThan(0);
      expect(created.spec).toEqual(input.spec);
      expect(AppSchema.parse(created)).toEqual(created);
      const other = await store.create(makeApp('api'));
      expect(other.metadata.uid).not.toBe(created.metadata.uid);
    });

    it('get returns the stored object, undefined when absent, and a copy the caller may mutate', async () => {
      const { store } = ctx;
      const created = await store.create(makeNode('node-a'));
      const got = await store.get('Node', 'node-a');
      expect(got).toEqual(created);
      expect(NodeSchema.parse(got)).toEqual(got);
      got!.metadata.labels = { zone: 'mutated' };
      created.metadata.labels = { zone: 'mutated-too' };
      expect((await store.get('Node', 'node-a'))!.metadata.labels).toEqual({ zone: 'eu-1' });
      expect(await store.get('Node', 'node-b')).toBeUndefined();
      expect(await store.get('App', 'node-a')).toBeUndefined(); // kinds are separate namespaces
    });

    it('list returns every object of one kind, with a revision at least that of the newest write', async () => {
      const { store } = ctx;
      const web = makeApp('web');
      await store.create(web);
      await store.create(makeApp('api'));
      await store.create(makeNode('node-a'));
      const last = await store.create(makeWorkload(web, 'node-a'));
      const apps = await store.list('App');
      expect(apps.items.map((a) => a.metadata.name).sort()).toEqual(['api', 'web']);
      expect(apps.items.every((a) => a.kind === 'App')).toBe(true);
      expect(apps.revision).toBeGreaterThanOrEqual(last.metadata.resourceVersion!);
      expect((await store.list('JoinToken')).items).toEqual([]);
      apps.items[0]!.metadata.labels = { mutated: 'yes' };
      expect((await store.list('App')).items.some((a) => a.metadata.labels?.['mutated'] === 'yes')).toBe(false);
    });

    it('list by node returns only objects bound to that node', async () => {
      const { store } = ctx;
      const web = await store.create(makeApp('web'));
      const api = await store.create(makeApp('api'));
      for (const node of ['node-a', 'node-b']) {
        await store.create(makeWorkload(web, node));
        await store.create(makeEdgeEvent(`started.${node}`, node));
      }
      await store.create(makeWorkload(api, 'node-a'));
      const onA = await store.list('Workload', { node: 'node-a' });
      expect(onA.items.map((w) => w.metadata.name).sort()).toEqual(['api.node-a', 'web.node-a']);
      expect(onA.items.every((w) => WorkloadSchema.parse(w).spec.nodeName === 'node-a')).toBe(true);
      expect((await store.list('Event', { node: 'node-b' })).items.map((e) => e.metadata.name)).toEqual(['started.node-b']);
      expect((await store.list('Workload', { node: 'node-z' })).items).toEqual([]);
      // Fleet-wide kinds are bound to no node.
      expect((await store.list('App', { node: 'node-a' })).items).toEqual([]);
    });

    it('create of an existing object fails with ConflictError and changes nothing', async () => {
      const { store } = ctx;
      const first = await store.create(makeApp('web', { command: '/bin/first' }));
      const error = await store.create(makeApp('web', { command: '/bin/second' })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictError);
      expect((error as ConflictError).statusCode).toBe(409);
      expect(await store.get('App', 'web')).toEqual(first);
      // The same name under another kind is a different object.
      await expect(store.create(makeNode('web'))).resolves.toMatchObject({ kind: 'Node' });
    });
  });

  describe('update', () => {
    it('a stale resourceVersion fails with ConflictError naming kind, name and both versions; nothing changes', async () => {
      const { store } = ctx;
      const v1 = await store.create(makeApp('web'));
      const v2 = await store.update({ ...v1, metadata: { ...v1.metadata, labels: { team: 'a' } } });
      const before = await store.revision();
      const error = await store.update({ ...v1, metadata: { ...v1.metadata, labels: { team: 'b' } } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictError);
      const message = (error as Error).message;
      expect(message).toContain('App');
      expect(message).toContain('web');
      expect(message).toContain(String(v1.metadata.resourceVersion));
      expect(message).toContain(String(v2.metadata.resourceVersion));
      expect(await store.get('App', 'web')).toEqual(v2);
      expect(await store.revision()).toBe(before);
    });

    it('an update with the current resourceVersion, or with none, succeeds', async () => {
      const { store } = ctx;
      const v1 = await store.create(makeApp('web'));
      const v2 = await store.update({ ...v1, metadata: { ...v1.metadata, labels: { team: 'a' } } });
      expect(v2.metadata.resourceVersion).toBeGreaterThan(v1.metadata.resourceVersion!);
      const { resourceVersion: _dropped, ...withoutRv } = v1.metadata;
      const v3: App = await store.update({ ...v1, metadata: { ...withoutRv, labels: { team: 'last-writer' } } });
      expect(v3.metadata.labels).toEqual({ team: 'last-writer' });
      expect(v3.metadata.resourceVersion).toBeGreaterThan(v2.metadata.resourceVersion!);
      expect(await store.get('App', 'web')).toEqual(v3);
    });

    it('update of a missing object fails with NotFoundError', async () => {
      const error = await ctx.store.update(makeApp('ghost')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotFoundError);
      expect((error as NotFoundError).statusCode).toBe(404);
    });

    it('generation moves only when spec changes; uid and creationTimestamp are preserved', async () => {
      const { store } = ctx;
      const app = await store.create(makeApp('web'));
      const wl = await store.create(makeWorkload(app, 'node-a'));

      const withStatus = await store.update({ ...wl, status: runningStatus(1) });
      expect(withStatus.metadata.generation).toBe(1);
      const relabelled = await store.update({ ...withStatus, metadata: { ...withStatus.metadata, labels: { app: 'web', x: 'y' } } });
      expect(relabelled.metadata.generation).toBe(1);

      const newTemplate = { ...wl.spec.template, args: ['--interval', '10s'] };
      const respec = await store.update({ ...relabelled, spec: { ...relabelled.spec, template: newTemplate } });
      expect(respec.metadata.generation).toBe(2);

      // Same spec with keys in another order is not a change.
      const reordered = Object.fromEntries(Object.entries(respec.spec).reverse()) as typeof respec.spec;
      expect((await store.update({ ...respec, spec: reordered })).metadata.generation).toBe(2);

      // Identity fields come from the store, whatever the caller sends.
      const forged = await store.update({
        ...respec,
        metadata: { ...respec.metadata, resourceVersion: undefined, uid: 'forged', creationTimestamp: '1999-01-01T00:00:00Z', generation: 40 },
      });
      expect(forged.metadata.uid).toBe(wl.metadata.uid);
      expect(forged.metadata.creationTimestamp).toBe(wl.metadata.creationTimestamp);
      expect(forged.metadata.generation).toBe(2);
      expect(WorkloadSchema.parse(forged)).toEqual(forged);
    });
  });

  describe('delete', () => {
    it('returns the last state with a new resourceVersion and removes the object', async () => {
      const { store } = ctx;
      const app = await store.create(makeApp('web'));
      const wl = await store.update({ ...(await store.create(makeWorkload(app, 'node-a'))), status: runningStatus(1) });
      const deleted = await store.delete('Workload', wl.metadata.name);
      expect(deleted.metadata.resourceVersion).toBeGreaterThan(wl.metadata.resourceVersion!);
      expect({ ...deleted, metadata: { ...deleted.metadata, resourceVersion: wl.metadata.resourceVersion } }).toEqual(wl);
      expect(await store.get('Workload', wl.metadata.name)).toBeUndefined();
      expect((await store.list('Workload', { node: 'node-a' })).items).toEqual([]);
      expect(await store.revision()).toBeGreaterThanOrEqual(deleted.metadata.resourceVersion!);
      // The name is free again.
      await expect(store.create(makeWorkload(app, 'node-a'))).resolves.toMatchObject({ metadata: { generation: 1 } });
    });

    it('a missing object fails with NotFoundError; a stale resourceVersion with ConflictError', async () => {
      const { store } = ctx;
      await expect(store.delete('App', 'ghost')).rejects.toBeInstanceOf(NotFoundError);
      const v1 = await store.create(makeApp('web'));
      const v2 = await store.update({ ...v1, metadata: { ...v1.metadata, labels: { team: 'b' } } });
      await expect(store.delete('App', 'web', { resourceVersion: v1.metadata.resourceVersion! })).rejects.toBeInstanceOf(ConflictError);
      expect(await store.get('App', 'web')).toEqual(v2);
      await expect(store.delete('App', 'web', { resourceVersion: v2.metadata.resourceVersion! })).resolves.toMatchObject({ kind: 'App' });
    });
  });
}

function persistenceConformanceTests(ctx: SuiteContext): void {
  describe('persistence', () => {
    it('objects, revision and the event log survive close and reopen', async (testCtx) => {
      if (!ctx.harness.reopen) testCtx.skip();
      const before = ctx.store;
      const start = await before.revision();
      const app = await before.create(makeApp('web'));
      const node = await before.create(makeNode('node-a'));
      const wl = await before.create(makeWorkload(app, 'node-a'));
      const deleted = await before.delete('Node', 'node-a');
      const lastRevision = deleted.metadata.resourceVersion!;

      const after = await ctx.harness.reopen!();
      expect(await after.revision()).toBeGreaterThanOrEqual(lastRevision);
      expect(await after.get('App', 'web')).toEqual(app);
      expect(await after.get('Workload', wl.metadata.name)).toEqual(wl);
      expect(await after.get('Node', 'node-a')).toBeUndefined();

      const next = await after.create(makeNode('node-b'));
      expect(next.metadata.resourceVersion).toBeGreaterThan(lastRevision);

      // The log written before the restart replays after it, followed by the new write.
      const seen: number[] = [];
      const watch = await after.watch({ fromRevision: start }, (e) => seen.push(e.revision));
      await waitFor(() => seen.length >= 5, 'replay across reopen');
      expect(seen.slice(0, 5)).toEqual([app, node, wl, deleted, next].map((o) => o.metadata.resourceVersion));
      watch.close();
    });
  });
}
