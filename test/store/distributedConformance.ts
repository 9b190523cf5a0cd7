import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, FencedError, GoneError, NotFoundError, type Store, type StoreError, type WatchEvent, type WriteGuard } from '../../cloudcore/store/store.js';
import { makeApp, makeDevice, makeWorkload, waitFor } from './fixtures.js';

/**
 * The part of the Store contract only a distributed backend exercises: two Store instances (two
 * cloudcore replicas) over the same state. A backend's test file calls
 * `distributedConformanceSuite(name, factory)`; each test gets a fresh pair over fresh state.
 */

export interface ReplicasUnderTest {
  /** Two stores over the same fresh state, as two replicas would open it. */
  a: Store;
  b: Store;
  /** Compacts the shared engine's history up to its current revision; returns that revision. */
  compactAll(): Promise<number>;
  /** Creates (or re-creates) a cluster key relative to the store prefix; returns its create revision. */
  putClusterKey(key: string): Promise<number>;
  deleteClusterKey(key: string): Promise<void>;
  /**
   * Cuts replica A off the engine (its connections dropped, new ones refused) until the returned
   * function restores it. Omit if the harness cannot; the test that needs it is skipped.
   */
  cutA?(): Promise<() => Promise<void>>;
  cleanup(): Promise<void>;
}

export function distributedConformanceSuite(name: string, makeReplicas: () => Promise<ReplicasUnderTest>): void {
  describe(`Distributed store conformance: ${name}`, () => {
    let replicas: ReplicasUnderTest | undefined;
    const r = () => replicas!;
    beforeEach(async () => { replicas = await makeReplicas(); });
    afterEach(async () => {
      await replicas?.cleanup();
      replicas = undefined;
    });

    it('two replicas updating the same object at once: exactly one wins, the other gets 409', async () => {
      const { a, b } = r();
      let app = await a.create(makeApp('web'));
      for (let round = 0; round < 10; round++) {
        const results = await Promise.allSettled([
          a.update({ ...app, metadata: { ...app.metadata, labels: { by: 'a', round: String(round) } } }),
          b.update({ ...app, metadata: { ...app.metadata, labels: { by: 'b', round: String(round) } } }),
        ]);
        const won = results.filter((x) => x.status === 'fulfilled');
        const lost = results.filter((x) => x.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
        const winner = (won[0] as PromiseFulfilledResult<typeof app>).value;
        // Both replicas read the winner, nothing of the loser.
        expect(await a.get('App', 'web')).toEqual(winner);
        expect(await b.get('App', 'web')).toEqual(winner);
        app = winner;
      }
      // Creates race the same way.
      const creates = await Promise.allSettled([a.create(makeApp('api')), b.create(makeApp('api'))]);
      expect(creates.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
      expect((creates.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    });

    it('a watch on replica A sees writes made through replica B, in revision order, each once', async () => {
      const { a, b } = r();
      const start = await a.revision();
      const seen: WatchEvent[] = [];
      const onNode: WatchEvent[] = [];
      const watch = await a.watch({ fromRevision: start }, (e) => seen.push(e));
      const nodeWatch = await a.watch({ node: 'node-a', fromRevision: start }, (e) => onNode.push(e));
      const written: number[] = [];
      const web = await b.create(makeApp('web'));
      written.push(web.metadata.resourceVersion!);
      for (let i = 0; i < 20; i++) {
        const through = i % 2 === 0 ? b : a;
        const dev = await through.create(makeDevice(`dev-${i}`, 'node-a'));
        written.push(dev.metadata.resourceVersion!);
      }
      const wl = await b.create(makeWorkload(web, 'node-a'));
      written.push(wl.metadata.resourceVersion!);
      await waitFor(() => seen.length >= written.length && onNode.length >= written.length - 1, 'every write on A');
      expect(seen.map((e) => e.revision)).toEqual(written);
      expect(onNode.map((e) => e.revision)).toEqual(written.slice(1));
      expect(seen.at(-1)!.object).toEqual(wl);
      watch.close();
      nodeWatch.close();
    });

    it('compaction: a watch from before it gets GoneError; a live watch cut off and left behind it gets onError(GoneError)', async (testCtx) => {
      const { a, b } = r();
      const start = await a.revision();
      let app = await b.create(makeApp('web'));
      const createdAt = app.metadata.resourceVersion!;
      const seen: WatchEvent[] = [];
      const errors: StoreError[] = [];
      const watch = await a.watch({ kind: 'App', fromRevision: start }, (e) => seen.push(e), (e) => errors.push(e));
      await waitFor(() => seen.length === 1, 'the first write on A');
      if (!r().cutA) testCtx.skip();
      const restore = await r().cutA!();
      for (let i = 0; i < 5; i++) app = await b.update({ ...app, metadata: { ...app.metadata, labels: { step: String(i) } } });
      const compacted = await r().compactAll();
      expect(await b.compactedRevision()).toBeGreaterThanOrEqual(compacted);
      await expect(b.watch({ fromRevision: start }, () => {})).rejects.toBeInstanceOf(GoneError);
      await restore();
      await waitFor(() => errors.length === 1, 'onError on the watch left behind the compaction', 30_000);
      expect(errors[0]).toBeInstanceOf(GoneError);
      expect(errors[0]!.statusCode).toBe(410);
      // Nothing was delivered from after the gap: the caller lists again instead.
      expect(seen.map((e) => e.revision)).toEqual([createdAt]);
      expect(await a.compactedRevision()).toBeGreaterThanOrEqual(compacted);
      watch.close();
      // A new watch from the compaction on works.
      const after: WatchEvent[] = [];
      const again = await a.watch({ kind: 'App', fromRevision: compacted }, (e) => after.push(e));
      const last = await b.update({ ...app, metadata: { ...app.metadata, labels: { step: 'after' } } });
      await waitFor(() => after.some((e) => e.revision === last.metadata.resourceVersion), 'a write after the compaction');
      again.close();
    });

    it('guarded writes: a guard that no longer holds throws FencedError (503) and writes nothing', async () => {
      const { a, b } = r();
      const leaderRevision = await r().putClusterKey('cluster/leader');
      const guard: WriteGuard = { key: 'cluster/leader', createRevision: leaderRevision, lostMessage: 'this replica is no longer the leader' };
      const asLeader = a.guarded(guard);
      const app = await asLeader.create(makeApp('web'));
      const updated = await asLeader.update({ ...app, metadata: { ...app.metadata, labels: { by: 'leader' } } });
      // A conflict under a holding guard is still the object's 409, not a fence.
      await expect(asLeader.update(app)).rejects.toBeInstanceOf(ConflictError);
      await expect(asLeader.delete('App', 'ghost')).rejects.toBeInstanceOf(NotFoundError);

      // Another replica takes the key over (a new create revision): the old guard is void.
      await r().deleteClusterKey('cluster/leader');
      const taken = await r().putClusterKey('cluster/leader');
      expect(taken).not.toBe(leaderRevision);
      const before = await b.revision();
      const attempts = [
        () => asLeader.create(makeApp('api')),
        () => asLeader.update({ ...updated, metadata: { ...updated.metadata, labels: { by: 'stale leader' } } }),
        () => asLeader.delete('App', 'web'),
      ];
      for (const attempt of attempts) {
        const error = await attempt().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(FencedError);
        expect((error as FencedError).statusCode).toBe(503);
        expect((error as FencedError).message).toBe('this replica is no longer the leader');
      }
      expect(await b.get('App', 'web')).toEqual(updated);
      expect(await b.get('App', 'api')).toBeUndefined();
      expect(await b.revision()).toBe(before);
      // The new holder's guard works; reads and watches of a guarded view are the store's own.
      const asNew = b.guarded({ ...guard, createRevision: taken });
      await expect(asNew.update({ ...updated, metadata: { ...updated.metadata, labels: { by: 'new leader' } } })).resolves.toMatchObject({ kind: 'App' });
      expect(await asLeader.get('App', 'web')).toMatchObject({ metadata: { labels: { by: 'new leader' } } });

      // createRevision 0: the key must not exist (a session nobody holds yet).
      const unclaimed = a.guarded({ key: 'cluster/sessions/node-a', createRevision: 0, lostMessage: 'node-a is held by another replica' });
      await expect(unclaimed.create(makeDevice('dev-1', 'node-a'))).resolves.toMatchObject({ kind: 'Device' });
      await r().putClusterKey('cluster/sessions/node-a');
      await expect(unclaimed.create(makeDevice('dev-2', 'node-a'))).rejects.toThrow('node-a is held by another replica');
      expect(await a.get('Device', 'dev-2')).toBeUndefined();

      // Guards chain: a view of a view needs both, and the error names the one that failed.
      const both = b.guarded({ ...guard, createRevision: taken })
        .guarded({ key: 'cluster/sessions/node-b', createRevision: 0, lostMessage: 'node-b has a session on some replica' });
      const dev3 = await both.create(makeDevice('dev-3', 'node-b'));
      await r().putClusterKey('cluster/sessions/node-b');
      const before2 = await b.revision();
      await expect(both.update({ ...dev3, metadata: { ...dev3.metadata, labels: { x: 'y' } } }))
        .rejects.toThrow(/^node-b has a session on some replica$/);
      await expect(both.delete('Device', 'dev-3')).rejects.toBeInstanceOf(FencedError);
      expect(await b.get('Device', 'dev-3')).toEqual(dev3);
      expect(await b.revision()).toBe(before2);
    });
  });
}
