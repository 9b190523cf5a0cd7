import { describe, expect, it } from 'vitest';
import type { Device, Workload } from '../../protocol/index.js';
import type { Store, WatchEvent, WatchOptions } from '../../cloudcore/store/store.js';
import type { SuiteContext } from './conformance.js';
import { makeApp, makeDevice, makeWorkload, waitFor } from './fixtures.js';

/**
 * The node-binding half of the Store conformance suite (see conformance.ts): a write that moves
 * an object from one node to another must reach the node it leaves as a delete, in live watches
 * and in replays, or that node keeps the object for good (issue 19: a moved device kept its
 * password on the old edge).
 */

type Bound = Workload | Device;

function line(event: WatchEvent): string {
  const node = event.object.kind === 'Workload' || event.object.kind === 'Device' ? event.object.spec.nodeName : '-';
  return `${event.type} ${event.object.kind}/${event.object.metadata.name} on ${node}`;
}

const SENTINEL = makeApp('sentinel');

/**
 * Ends a scenario with a workload on each node: once a watch has seen the one of its node,
 * everything before it has been delivered (backends may deliver asynchronously).
 */
async function writeSentinels(store: Store): Promise<void> {
  for (const node of ['node-a', 'node-b']) await store.create(makeWorkload(SENTINEL, node));
}

function untilSentinel(events: readonly WatchEvent[], node: string): string[] | undefined {
  const at = events.findIndex((e) => e.object.metadata.name === `sentinel.${node}`);
  if (at < 0) return undefined;
  for (const e of events) expect(e.revision).toBe(e.object.metadata.resourceVersion);
  return events.slice(0, at).map(line);
}

async function collect(store: Store, opts: WatchOptions & { node: string }): Promise<string[]> {
  const events: WatchEvent[] = [];
  const watch = await store.watch(opts, (e) => events.push(e));
  try {
    await waitFor(() => untilSentinel(events, opts.node) !== undefined, `watch ${JSON.stringify(opts)} to reach the sentinel`);
  } finally {
    watch.close();
  }
  return untilSentinel(events, opts.node)!;
}

function moved<T extends Bound>(obj: T, node: string): T {
  return { ...obj, spec: { ...obj.spec, nodeName: node } };
}

export function rebindConformanceTests(ctx: SuiteContext): void {
  describe('moving an object between nodes', () => {
    it('is a DELETED for the old node and an ADDED for the new one, live and in replay; fleet-wide watchers see a MODIFIED', async () => {
      const { store } = ctx;
      const start = await store.revision();
      const live = { a: [] as WatchEvent[], b: [] as WatchEvent[], devicesOnA: [] as WatchEvent[], workloads: [] as WatchEvent[] };
      const watches = await Promise.all([
        store.watch({ node: 'node-a', fromRevision: start }, (e) => live.a.push(e)),
        store.watch({ node: 'node-b', fromRevision: start }, (e) => live.b.push(e)),
        store.watch({ kind: 'Device', node: 'node-a', fromRevision: start }, (e) => live.devicesOnA.push(e)),
        store.watch({ kind: 'Workload', fromRevision: start }, (e) => live.workloads.push(e)),
      ]);

      const app = await store.create(makeApp('web'));
      const wl = await store.create(makeWorkload(app, 'node-a'));
      const dev = await store.create(makeDevice('thermo-1', 'node-a'));
      const wlMoved = await store.update(moved(wl, 'node-b'));
      const devMoved = await store.update(moved(dev, 'node-b'));
      // After the move, changes and the delete concern node-b alone.
      const rotated = await store.update({ ...devMoved, spec: { ...devMoved.spec, credentialHash: 'scrypt$bmV3c2FsdA==$bmV3a2V5bmV3a2V5bmV3a2V5' } });
      await store.delete('Device', 'thermo-1');
      await store.delete('Workload', wl.metadata.name);
      await writeSentinels(store);

      const onA = ['ADDED Workload/web.node-a on node-a', 'ADDED Device/thermo-1 on node-a',
        'DELETED Workload/web.node-a on node-a', 'DELETED Device/thermo-1 on node-a'];
      const onB = ['ADDED Workload/web.node-a on node-b', 'ADDED Device/thermo-1 on node-b', 'MODIFIED Device/thermo-1 on node-b',
        'DELETED Device/thermo-1 on node-b', 'DELETED Workload/web.node-a on node-b'];
      await waitFor(() => untilSentinel(live.a, 'node-a') !== undefined && untilSentinel(live.b, 'node-b') !== undefined
        && untilSentinel(live.workloads, 'node-b') !== undefined, 'live delivery up to the sentinels');
      expect(untilSentinel(live.a, 'node-a')).toEqual(onA);
      expect(untilSentinel(live.b, 'node-b')).toEqual(onB);
      expect(live.devicesOnA.map(line)).toEqual(['ADDED Device/thermo-1 on node-a', 'DELETED Device/thermo-1 on node-a']);
      expect(untilSentinel(live.workloads, 'node-a')).toEqual([
        'ADDED Workload/web.node-a on node-a', 'MODIFIED Workload/web.node-a on node-b', 'DELETED Workload/web.node-a on node-b']);
      for (const w of watches) w.close();

      // The old node's delete carries the object's last state there, at the move's revision.
      const leaving = live.a.find((e) => e.type === 'DELETED' && e.object.kind === 'Device')!;
      expect(leaving.revision).toBe(devMoved.metadata.resourceVersion);
      expect(leaving.object).toEqual({ ...dev, metadata: { ...dev.metadata, resourceVersion: devMoved.metadata.resourceVersion } });
      expect(live.b.find((e) => e.type === 'ADDED' && e.object.kind === 'Workload')!.object).toEqual(wlMoved);
      expect(live.b.find((e) => e.type === 'MODIFIED')!.object).toEqual(rotated);

      // A node resuming from before the move (an edge that was offline) hears the same story.
      expect(await collect(store, { node: 'node-a', fromRevision: start })).toEqual(onA);
      expect(await collect(store, { node: 'node-b', fromRevision: start })).toEqual(onB);
      expect(await collect(store, { kind: 'Workload', node: 'node-a', fromRevision: start }))
        .toEqual(['ADDED Workload/web.node-a on node-a', 'DELETED Workload/web.node-a on node-a']);
      // Resuming after the node's last change of it but before the move: only the delete.
      expect(await collect(store, { node: 'node-a', fromRevision: dev.metadata.resourceVersion! }))
        .toEqual(['DELETED Workload/web.node-a on node-a', 'DELETED Device/thermo-1 on node-a']);
    });

    it('lists by node show the object only under its new node; the move survives a reopen', async (testCtx) => {
      const { store } = ctx;
      const start = await store.revision();
      const dev = await store.create(makeDevice('thermo-2', 'node-a'));
      const devMoved = await store.update(moved(dev, 'node-b'));
      await writeSentinels(store);
      expect((await store.list('Device', { node: 'node-a' })).items).toEqual([]);
      expect((await store.list('Device', { node: 'node-b' })).items).toEqual([devMoved]);
      if (!ctx.harness.reopen) testCtx.skip();
      const after = await ctx.harness.reopen!();
      expect(await collect(after, { node: 'node-a', fromRevision: start }))
        .toEqual(['ADDED Device/thermo-2 on node-a', 'DELETED Device/thermo-2 on node-a']);
    });
  });
}
