import { describe, expect, it } from 'vitest';
import { GoneError, type WatchEvent } from '../../cloudcore/store/store.js';
import type { ConformanceOptions, SuiteContext } from './conformance.js';
import { makeApp, makeEdgeEvent, makeNode, makeWorkload, runningStatus, waitFor } from './fixtures.js';

/** The watch half of the Store conformance suite (see conformance.ts). */

function recorder() {
  const events: WatchEvent[] = [];
  return {
    events,
    onEvent: (event: WatchEvent) => { events.push(event); },
    summary: () => events.map((e) => `${e.type} ${e.object.kind}/${e.object.metadata.name}`),
  };
}

function expectWellFormed(events: readonly WatchEvent[]): void {
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    expect(event.revision).toBe(event.object.metadata.resourceVersion);
    if (i > 0) expect(event.revision).toBeGreaterThan(events[i - 1]!.revision);
  }
}

export function watchConformanceTests(ctx: SuiteContext, options: ConformanceOptions): void {
  describe('watch', () => {
    it('replays changes after fromRevision, then follows live writes, in revision order', async () => {
      const { store } = ctx;
      const app = await store.create(makeApp('web'));
      const node = await store.create(makeNode('node-a'));
      const appV2 = await store.update({ ...app, metadata: { ...app.metadata, labels: { team: 'b' } } });

      const rec = recorder();
      const watch = await store.watch({ fromRevision: app.metadata.resourceVersion! }, rec.onEvent);
      await waitFor(() => rec.events.length >= 2, 'replay of two changes');
      expect(rec.summary()).toEqual(['ADDED Node/node-a', 'MODIFIED App/web']);
      expect(rec.events[0]!.object).toEqual(node);
      expect(rec.events[1]!.object).toEqual(appV2);

      const deleted = await store.delete('Node', 'node-a');
      const wl = await store.create(makeWorkload(appV2, 'node-a'));
      await waitFor(() => rec.events.length >= 4, 'two live changes');
      expect(rec.summary()).toEqual(['ADDED Node/node-a', 'MODIFIED App/web', 'DELETED Node/node-a', 'ADDED Workload/web.node-a']);
      expect(rec.events[2]!.object).toEqual(deleted);
      expect(rec.events[3]!.object).toEqual(wl);
      expectWellFormed(rec.events);
      watch.close();
    });

    it('a watch from the current revision sees only later writes', async () => {
      const { store } = ctx;
      await store.create(makeApp('old'));
      const rec = recorder();
      const watch = await store.watch({ fromRevision: await store.revision() }, rec.onEvent);
      await store.create(makeApp('new'));
      await waitFor(() => rec.events.length >= 1, 'the live write');
      expect(rec.summary()).toEqual(['ADDED App/new']);
      watch.close();
    });

    it('filters by kind, in replay and live', async () => {
      const { store } = ctx;
      const start = await store.revision();
      const app = await store.create(makeApp('web'));
      await store.create(makeNode('node-a'));
      await store.create(makeWorkload(app, 'node-a'));

      const rec = recorder();
      const watch = await store.watch({ kind: 'Workload', fromRevision: start }, rec.onEvent);
      await store.create(makeEdgeEvent('started.node-a', 'node-a'));
      await store.create(makeNode('node-b'));
      await store.create(makeWorkload(app, 'node-b')); // sentinel: everything before it has been delivered or skipped
      await waitFor(() => rec.events.some((e) => e.object.metadata.name === 'web.node-b'), 'the sentinel workload');
      expect(rec.summary()).toEqual(['ADDED Workload/web.node-a', 'ADDED Workload/web.node-b']);
      expectWellFormed(rec.events);
      watch.close();
    });

    it('filters by node: only objects bound to that node, of every kind, in replay and live', async () => {
      const { store } = ctx;
      const start = await store.revision();
      const web = await store.create(makeApp('web'));
      const api = await store.create(makeApp('api'));
      const onA = await store.create(makeWorkload(web, 'node-a'));
      await store.create(makeWorkload(web, 'node-b'));

      const rec = recorder();
      const watch = await store.watch({ node: 'node-a', fromRevision: start }, rec.onEvent);
      await store.create(makeEdgeEvent('started.node-b', 'node-b'));
      await store.create(makeEdgeEvent('started.node-a', 'node-a'));
      await store.update({ ...onA, status: runningStatus(1) });
      await store.create(makeNode('node-a')); // the Node object itself is fleet-wide, not bound
      await store.delete('Workload', onA.metadata.name);
      await store.create(makeWorkload(api, 'node-a')); // sentinel
      await waitFor(() => rec.events.some((e) => e.object.metadata.name === 'api.node-a'), 'the sentinel workload');
      expect(rec.summary()).toEqual([
        'ADDED Workload/web.node-a',
        'ADDED Event/started.node-a',
        'MODIFIED Workload/web.node-a',
        'DELETED Workload/web.node-a',
        'ADDED Workload/api.node-a',
      ]);
      expectWellFormed(rec.events);
      watch.close();
    });

    it('filters by kind and node together', async () => {
      const { store } = ctx;
      const start = await store.revision();
      const web = await store.create(makeApp('web'));
      await store.create(makeWorkload(web, 'node-a'));
      await store.create(makeEdgeEvent('pulled.node-a', 'node-a'));
      const rec = recorder();
      const watch = await store.watch({ kind: 'Event', node: 'node-a', fromRevision: start }, rec.onEvent);
      await store.create(makeEdgeEvent('pulled.node-b', 'node-b'));
      await store.create(makeWorkload(web, 'node-b'));
      await store.create(makeEdgeEvent('started.node-a', 'node-a', 'Started'));
      await waitFor(() => rec.events.length >= 2, 'two events of node-a');
      await store.create(makeEdgeEvent('stopped.node-a', 'node-a', 'Stopped'));
      await waitFor(() => rec.events.length >= 3, 'the third event of node-a');
      expect(rec.summary()).toEqual(['ADDED Event/pulled.node-a', 'ADDED Event/started.node-a', 'ADDED Event/stopped.node-a']);
      watch.close();
    });

    it('close stops delivery and can be called twice', async () => {
      const { store } = ctx;
      const from = await store.revision();
      const closed = recorder();
      const reference = recorder();
      const toClose = await store.watch({ kind: 'App', fromRevision: from }, closed.onEvent);
      const stays = await store.watch({ kind: 'App', fromRevision: from }, reference.onEvent);
      await store.create(makeApp('first'));
      await waitFor(() => closed.events.length === 1 && reference.events.length === 1, 'both watchers to see the first write');
      toClose.close();
      toClose.close();
      await store.create(makeApp('second'));
      await waitFor(() => reference.events.length === 2, 'the open watcher to see the second write');
      expect(closed.summary()).toEqual(['ADDED App/first']);
      stays.close();
    });

    it('a listener that throws breaks neither the write nor other watchers', async () => {
      const { store } = ctx;
      const from = await store.revision();
      let thrown = 0;
      const bad = await store.watch({ fromRevision: from }, () => { thrown++; throw new Error('listener bug'); });
      const good = recorder();
      const goodWatch = await store.watch({ fromRevision: from }, good.onEvent);
      const created = await store.create(makeApp('web'));
      await store.update({ ...created, metadata: { ...created.metadata, labels: { team: 'b' } } });
      await waitFor(() => good.events.length >= 2, 'the healthy watcher to see both writes');
      expect(good.summary()).toEqual(['ADDED App/web', 'MODIFIED App/web']);
      expect((await store.get('App', 'web'))!.metadata.labels).toEqual({ team: 'b' });
      expect(thrown).toBeGreaterThanOrEqual(1);
      bad.close();
      goodWatch.close();
    });

    it('event objects are copies: a listener mutating one affects neither the store nor other watchers', async () => {
      const { store } = ctx;
      const from = await store.revision();
      const mutator = await store.watch({ fromRevision: from }, (e) => { e.object.metadata.labels = { mutated: 'yes' }; });
      const rec = recorder();
      const watch = await store.watch({ fromRevision: from }, rec.onEvent);
      await store.create(makeApp('web'));
      await waitFor(() => rec.events.length >= 1, 'the write');
      expect(rec.events[0]!.object.metadata.labels).toEqual({ team: 'fleet' });
      expect((await store.get('App', 'web'))!.metadata.labels).toEqual({ team: 'fleet' });
      mutator.close();
      watch.close();
    });

    it('after compaction, watching from before the compacted revision fails with GoneError', async (testCtx) => {
      if (!options.compaction) testCtx.skip();
      const { store } = await ctx.makeExtra({ maxEvents: 5 });
      const start = await store.revision();
      let app = await store.create(makeApp('web'));
      for (let i = 0; i < 11; i++) {
        app = await store.update({ ...app, metadata: { ...app.metadata, labels: { step: String(i) } } });
      }
      const compacted = await store.compactedRevision();
      expect(compacted).toBeGreaterThan(start);
      expect(compacted).toBeLessThan(app.metadata.resourceVersion!);

      const error = await store.watch({ fromRevision: compacted - 1 }, () => {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GoneError);
      expect((error as GoneError).statusCode).toBe(410);

      // From the compacted revision itself, everything retained replays, ending at the newest write.
      const rec = recorder();
      const watch = await store.watch({ fromRevision: compacted }, rec.onEvent);
      await waitFor(() => rec.events.at(-1)?.revision === app.metadata.resourceVersion, 'replay up to the newest write');
      expect(rec.events[0]!.revision).toBeGreaterThan(compacted);
      expectWellFormed(rec.events);
      watch.close();
      // Objects themselves are never compacted.
      expect(await store.get('App', 'web')).toEqual(app);
    });
  });
}
