import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, etcdUnavailable } from '../../../test/helpers/etcdCluster.js';
import { makeApp, makeWorkload } from '../../../test/store/fixtures.js';
import { TcpProxy } from '../../../test/helpers/tcpProxy.js';
import { sleep, waitFor } from '../../../test/helpers/wait.js';
import { UnavailableError, type StoreError, type WatchEvent } from '../store.js';
import { openEtcdStore } from './etcdStore.js';

/**
 * The shared node watch (nodeWatchFanout.ts) against a real 3-member etcd: the conformance
 * suites check what a node watch delivers; these check what only the sharing can get wrong.
 */
const unavailable = etcdUnavailable();
let prefixes = 0;
const freshPrefix = () => `/edgefleet-fanout-${process.pid}-${++prefixes}/`;

describe.skipIf(unavailable)(`node watches over one etcd watch${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let cluster: EtcdCluster;
  let raw: Etcd3;
  beforeAll(async () => {
    cluster = await EtcdCluster.start();
    raw = new Etcd3({ hosts: cluster.endpointList });
  }, 60_000);
  afterAll(async () => {
    raw?.close();
    await cluster?.stop();
  });

  it('two hundred node watches on a replica are one etcd watcher, and each node sees only its own changes', async () => {
    const store = await openEtcdStore({ endpoints: cluster.endpointList, prefix: freshPrefix() });
    try {
      const before = await etcdWatchers(cluster);
      const from = await store.revision();
      const seen = new Map<string, WatchEvent[]>();
      const watches = await Promise.all(Array.from({ length: 200 }, (_, i) => {
        const node = `node-${i}`;
        seen.set(node, []);
        return store.watch({ node, fromRevision: from }, (e) => seen.get(node)!.push(e));
      }));
      expect(await etcdWatchers(cluster) - before).toBeLessThanOrEqual(1);
      const app = await store.create(makeApp('web'));
      for (const i of [3, 150]) await store.create(makeWorkload(app, `node-${i}`));
      await waitFor('both workloads delivered', () => seen.get('node-3')!.length === 1 && seen.get('node-150')!.length === 1);
      expect([...seen].filter(([, events]) => events.length > 0).map(([node, events]) => `${node}: ${events.map((e) => `${e.type} ${e.object.metadata.name}`).join()}`))
        .toEqual(['node-3: ADDED web.node-3', 'node-150: ADDED web.node-150']);
      for (const w of watches) w.close();
    } finally {
      await store.close();
    }
  });

  it('a watch from before what memory keeps is served by an etcd watch of its own, complete and in order', async () => {
    // Memory keeps 5 events; the node's first changes are long evicted when it resumes.
    const store = await openEtcdStore({ endpoints: cluster.endpointList, prefix: freshPrefix(), maxEvents: 5 });
    try {
      const live: WatchEvent[] = [];
      await store.watch({ node: 'other', fromRevision: await store.revision() }, (e) => live.push(e)); // starts the shared watch
      const from = await store.revision();
      const app = await store.create(makeApp('web'));
      let wl = await store.create(makeWorkload(app, 'edge-1'));
      for (let i = 0; i < 12; i++) wl = await store.update({ ...wl, status: { ...wl.status!, restarts: i } as typeof wl.status });
      const replay: WatchEvent[] = [];
      const watch = await store.watch({ node: 'edge-1', fromRevision: from }, (e) => replay.push(e));
      await waitFor('13 changes replayed', () => replay.length === 13);
      expect(replay.map((e) => e.type)).toEqual(['ADDED', ...Array<string>(12).fill('MODIFIED')]);
      expect(replay.map((e) => e.revision)).toEqual([...replay.map((e) => e.revision)].sort((a, b) => a - b));
      expect(replay.at(-1)!.object).toEqual(wl);
      watch.close();
    } finally {
      await store.close();
    }
  });

  it('an unreadable object ends the watch of its node alone; the others go on', async () => {
    const prefix = freshPrefix();
    const store = await openEtcdStore({ endpoints: cluster.endpointList, prefix });
    try {
      const from = await store.revision();
      const got = { a: [] as WatchEvent[], b: [] as WatchEvent[] };
      const errors: StoreError[] = [];
      await store.watch({ node: 'node-a', fromRevision: from }, (e) => got.a.push(e), (error) => errors.push(error));
      await store.watch({ node: 'node-b', fromRevision: from }, (e) => got.b.push(e), (error) => errors.push(error));
      await raw.put(`${prefix}n/node-a/Workload/broken`).value('{not json');
      const app = await store.create(makeApp('web'));
      await store.create(makeWorkload(app, 'node-b'));
      await waitFor('node-a ended, node-b served', () => errors.length === 1 && got.b.length === 1);
      expect(errors[0]!.message).toMatch(/broken/);
      expect(got.a).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('answers slower than the attempt deadline keep the member\'s connection and the shared watch on it', async () => {
    // One member behind a proxy that can go silent: calls time out, nothing is refused or closed.
    const proxy = new TcpProxy(Number(new URL(cluster.endpointList[0]!).port));
    const prefix = freshPrefix();
    const store = await openEtcdStore({ endpoints: [await proxy.start()], prefix, callTimeoutMs: 1_500 });
    const direct = await openEtcdStore({ endpoints: cluster.endpointList, prefix });
    try {
      const got: WatchEvent[] = [];
      await store.watch({ node: 'edge-1', fromRevision: await store.revision() }, (e) => got.push(e));
      const connections = proxy.accepted;
      proxy.stall();
      await expect(store.get('App', 'web')).rejects.toBeInstanceOf(UnavailableError);
      await sleep(500);
      proxy.restore();
      const app = await direct.create(makeApp('web'));
      await direct.create(makeWorkload(app, 'edge-1'));
      await waitFor('the change on the same watch', () => got.length === 1);
      expect(await store.get('App', 'web')).toBeDefined();
      // etcd3 used to close every channel of a member after a timed-out call: the watch came back on a new connection.
      expect(proxy.accepted, 'connections opened to the member').toBe(connections);
    } finally {
      await store.close();
      await direct.close();
      await proxy.close();
    }
  });
});

/** etcd's own count of watchers on its members (the one metric that shows how many we opened). */
async function etcdWatchers(cluster: EtcdCluster): Promise<number> {
  let total = 0;
  for (const endpoint of cluster.endpointList) {
    const text = await (await fetch(`${endpoint}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('etcd_debugging_mvcc_watcher_total '));
    if (line === undefined) throw new Error(`${endpoint}/metrics has no etcd_debugging_mvcc_watcher_total`);
    total += Number(line.split(' ')[1]);
  }
  return total;
}
