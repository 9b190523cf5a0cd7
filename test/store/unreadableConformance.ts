import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, UnreadableError, type WatchEvent } from '../../cloudcore/store/store.js';
import type { SuiteContext } from './conformance.js';
import { makeApp, makeNode, makeWorkload, waitFor } from './fixtures.js';

/**
 * The Store conformance suite's part on objects stored but unreadable (a torn write, a disk
 * error, a hand edit): every read that touches one fails naming it, nothing is left out
 * silently, nothing else changes, and `deleteUnreadable` is the way out. Needs the harness's
 * `makeUnreadable`; skipped for a backend whose harness cannot damage a stored object.
 */
export function unreadableConformanceTests(ctx: SuiteContext): void {
  describe('unreadable objects', () => {
    async function damaged(testCtx: { skip(): void }) {
      if (!ctx.harness.makeUnreadable) testCtx.skip();
      const { store } = ctx;
      const web = await store.create(makeApp('web'));
      const api = await store.create(makeApp('api'));
      await store.create(makeNode('node-a'));
      const workload = await store.create(makeWorkload(web, 'node-a'));
      await ctx.harness.makeUnreadable!('App', 'web');
      await ctx.harness.makeUnreadable!('Workload', workload.metadata.name);
      return { store, api, workload };
    }

    it('get, list, update and delete of an unreadable object fail naming it; nothing changes', async (testCtx) => {
      const { store, api } = await damaged(testCtx);
      const before = await store.revision();
      const got = await store.get('App', 'web').catch((e: unknown) => e);
      expect(got).toBeInstanceOf(UnreadableError);
      expect((got as UnreadableError).statusCode).toBe(500);
      expect((got as UnreadableError).message).toMatch(/^cannot read App "web" from the store: /);
      expect((got as UnreadableError).objects).toEqual([{ kind: 'App', name: 'web', reason: expect.any(String) as unknown }]);
      // A list fails rather than leave it out: a missing App would read as a deleted one.
      await expect(store.list('App')).rejects.toThrow(/App "web"/);
      await expect(store.list('Workload', { node: 'node-a' })).rejects.toThrow(/Workload "web\.node-a"/);
      await expect(store.update(makeApp('web'))).rejects.toBeInstanceOf(UnreadableError);
      await expect(store.delete('App', 'web')).rejects.toBeInstanceOf(UnreadableError);
      // Readable objects and other kinds are served as before.
      expect(await store.get('App', 'api')).toEqual(api);
      expect((await store.list('Node')).items.map((n) => n.metadata.name)).toEqual(['node-a']);
      expect(await store.revision()).toBe(before);
    });

    it('deleteUnreadable removes it, and watchers (the node too) see a DELETED event with kind and name', async (testCtx) => {
      const { store, workload } = await damaged(testCtx);
      const from = await store.revision();
      const onNode: WatchEvent[] = [];
      const all: WatchEvent[] = [];
      const nodeWatch = await store.watch({ node: 'node-a', fromRevision: from }, (e) => onNode.push(e));
      const allWatch = await store.watch({ kind: 'App', fromRevision: from }, (e) => all.push(e));
      const { revision } = await store.deleteUnreadable('Workload', workload.metadata.name);
      await store.deleteUnreadable('App', 'web');
      expect(revision).toBeGreaterThan(from);
      await waitFor(() => onNode.length >= 1 && all.length >= 1, 'DELETED events');
      expect(onNode[0]).toMatchObject({ type: 'DELETED', revision, object: { kind: 'Workload', metadata: { name: 'web.node-a', resourceVersion: revision } } });
      expect(all[0]).toMatchObject({ type: 'DELETED', object: { kind: 'App', metadata: { name: 'web' } } });
      nodeWatch.close();
      allWatch.close();
      expect(await store.get('App', 'web')).toBeUndefined();
      expect((await store.list('App')).items.map((a) => a.metadata.name)).toEqual(['api']);
      // The name is free again.
      await expect(store.create(makeApp('web'))).resolves.toMatchObject({ metadata: { name: 'web', generation: 1 } });
    });

    it('listUnreadable names every unreadable object, of every kind, and nothing else', async (testCtx) => {
      const { store } = await damaged(testCtx);
      expect(await store.listUnreadable()).toEqual([
        { kind: 'App', name: 'web', reason: expect.stringMatching(/^not JSON/) as unknown },
        { kind: 'Workload', name: 'web.node-a', reason: expect.stringMatching(/^not JSON/) as unknown },
      ]);
      await store.deleteUnreadable('App', 'web');
      await store.deleteUnreadable('Workload', 'web.node-a');
      expect(await store.listUnreadable()).toEqual([]);
    });

    it('deleteUnreadable refuses a readable object and a missing one, and changes nothing', async (testCtx) => {
      const { store, api } = await damaged(testCtx);
      const before = await store.revision();
      await expect(store.deleteUnreadable('App', 'api')).rejects.toBeInstanceOf(ConflictError);
      await expect(store.deleteUnreadable('App', 'api')).rejects.toThrow(/App "api" is readable/);
      await expect(store.deleteUnreadable('App', 'ghost')).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.get('App', 'api')).toEqual(api);
      expect(await store.revision()).toBe(before);
    });
  });
}
