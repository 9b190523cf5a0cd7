import { Etcd3, type IKeyValue } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kind } from '../../../protocol/index.js';
import { EtcdCluster, etcdUnavailable } from '../../../test/helpers/etcdCluster.js';
import { TcpProxy } from '../../../test/helpers/tcpProxy.js';
import { storeConformanceSuite, type MakeStoreOptions, type StoreUnderTest } from '../../../test/store/conformance.js';
import { distributedConformanceSuite, type ReplicasUnderTest } from '../../../test/store/distributedConformance.js';
import { SecretSchema } from '../../../protocol/index.js';
import { makeApp, makeDevice, waitFor } from '../../../test/store/fixtures.js';
import { newKeyFileText, parseKeyFile, SecretSealer } from '../secretSealing.js';
import { GoneError, UnavailableError, UnreadableError, type StoreError, type WatchEvent } from '../store.js';
import { CompactingStore } from '../../../test/store/compactingStore.js';
import { openEtcdStore, type EtcdStore } from './etcdStore.js';

/**
 * The Store conformance suite and the distributed suite on a real 3-member etcd cluster (Debian's
 * etcd on loopback). One cluster for the file; each test works under a fresh key prefix.
 */

const skipReason = etcdUnavailable();
let cluster: EtcdCluster;
/** A raw client for what a test does behind the store's back (damage, cleanup, cluster keys). */
let raw: Etcd3;
let prefixes = 0;
const freshPrefix = () => `/edgefleet-test-${process.pid}-${++prefixes}/`;

async function makeEtcdHarness(opts: MakeStoreOptions = {}, sealer?: SecretSealer): Promise<StoreUnderTest> {
  const prefix = freshPrefix();
  const open = async () => openEtcdStore({ endpoints: cluster.endpointList, prefix, sealer, maxEvents: opts.maxEvents });
  // With maxEvents the suite expects compaction as writes go: a wrapper compacts after each
  // write, as the leader's periodic compaction would (the store itself never compacts on its own).
  const view = (store: EtcdStore) => (opts.maxEvents === undefined ? store : new CompactingStore(store));
  let store = await open();
  const harness: StoreUnderTest = {
    store: view(store),
    async reopen() {
      await store.close();
      store = await open();
      harness.store = view(store);
      return harness.store;
    },
    async cleanup() {
      await store.close();
      await raw.delete().prefix(prefix);
    },
    async makeUnreadable(kind: Kind, name: string) {
      // A hand edit of the object: its key and its node's copy cut off mid-JSON, in one txn.
      const keys = (await raw.getAll().prefix(prefix).keys()).filter((k) => k === `${prefix}o/${kind}/${name}`
        || (k.startsWith(`${prefix}n/`) && k.endsWith(`/${kind}/${name}`)));
      const cut = await Promise.all(keys.map(async (k) => [k, ((await raw.get(k).string()) ?? '').slice(0, 40)] as const));
      await raw.if(`${prefix}o/${kind}/${name}`, 'Create', '>', 0).then(...cut.map(([k, v]) => raw.put(k).value(v))).commit();
    },
  };
  return harness;
}

describe.skipIf(skipReason)(`etcd store${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  beforeAll(async () => {
    cluster = await EtcdCluster.start({ size: 3 });
    raw = new Etcd3({ hosts: cluster.endpointList });
  });
  afterAll(async () => {
    raw?.close();
    await cluster?.stop();
  });

  storeConformanceSuite('etcd, 3 members', (opts) => makeEtcdHarness(opts), { compaction: true });
  // As cloudcore opens it: Secret bodies sealed at rest.
  const sealer = new SecretSealer(parseKeyFile(newKeyFileText(), 'test key'));
  storeConformanceSuite('etcd, 3 members, Secrets sealed', (opts) => makeEtcdHarness(opts, sealer), { compaction: true });

  distributedConformanceSuite('etcd, 3 members, two replicas', async (): Promise<ReplicasUnderTest> => {
    const prefix = freshPrefix();
    // Replica A reaches one member through a proxy the test can cut; B talks to every member.
    const proxy = new TcpProxy(Number(new URL(cluster.endpointList[0]!).port));
    const proxied = await proxy.start();
    const a = await openEtcdStore({ endpoints: [proxied], prefix, callTimeoutMs: 2000 });
    const b = await openEtcdStore({ endpoints: cluster.endpointList, prefix });
    return {
      a, b,
      async compactAll() {
        const revision = await b.revision();
        await raw.put(`${prefix}meta/compacted`).value(String(revision));
        await raw.kv.compact({ revision });
        return revision;
      },
      async putClusterKey(key) {
        const res = await raw.put(`${prefix}${key}`).value('replica');
        return Number(res.header.revision);
      },
      async deleteClusterKey(key) {
        await raw.delete().key(`${prefix}${key}`);
      },
      async cutA() {
        proxy.cut();
        return async () => proxy.restore();
      },
      async cleanup() {
        await a.close();
        await b.close();
        await proxy.close();
        await raw.delete().prefix(prefix);
      },
    };
  });

  describe('etcd specifics', () => {
    it('keeps the documented layout: the object, its node copy in the same revision, no resourceVersion in the body, Secrets sealed', async () => {
      const prefix = freshPrefix();
      const store = await openEtcdStore({ endpoints: cluster.endpointList, prefix, sealer });
      try {
        const dev = await store.create(makeDevice('thermo', 'node-a'));
        const kvOf = async (key: string): Promise<IKeyValue> => (await raw.kv.range({ key: Buffer.from(key) })).kvs[0]!;
        const [object, index] = [await kvOf(`${prefix}o/Device/thermo`), await kvOf(`${prefix}n/node-a/Device/thermo`)];
        expect(Number(object.mod_revision)).toBe(dev.metadata.resourceVersion);
        expect(index.mod_revision).toBe(object.mod_revision);
        expect(index.value.toString()).toBe(object.value.toString());
        expect(JSON.parse(object.value.toString())).toEqual({ ...dev, metadata: { ...dev.metadata, resourceVersion: undefined } });
        await store.create(SecretSchema.parse({ kind: 'Secret', metadata: { name: 'db' }, data: { password: 'hunter2' } }));
        const sealed = (await raw.get(`${prefix}o/Secret/db`).string())!;
        expect(sealed).toMatch(/^ef-sealed:v1:/);
        expect(sealed).not.toContain('hunter2');
      } finally {
        await store.close();
        await raw.delete().prefix(prefix);
      }
    });

    it('compact() records the revision under meta/compacted before compacting, and only moves forward', async () => {
      const prefix = freshPrefix();
      const store = await openEtcdStore({ endpoints: cluster.endpointList, prefix, maxEvents: 3 });
      try {
        let app = await store.create(makeApp('web'));
        for (let i = 0; i < 5; i++) app = await store.update({ ...app, metadata: { ...app.metadata, labels: { step: String(i) } } });
        const compacted = await store.compact();
        expect(compacted).toBe(app.metadata.resourceVersion! - 3);
        expect(await raw.get(`${prefix}meta/compacted`).string()).toBe(String(compacted));
        expect(await store.compactedRevision()).toBe(compacted);
        expect(await store.compact()).toBe(compacted); // nothing new beyond the window: no second compaction
        expect(await store.get('App', 'web')).toEqual(app);
      } finally {
        await store.close();
        await raw.delete().prefix(prefix);
      }
    });

    it('a compaction EdgeFleet did not record (etcd\'s own) reaches a watch from before it as onError(GoneError), and is learned', async () => {
      const prefix = freshPrefix();
      const store = await openEtcdStore({ endpoints: cluster.endpointList, prefix });
      try {
        const start = await store.revision();
        let app = await store.create(makeApp('web'));
        for (let i = 0; i < 3; i++) app = await store.update({ ...app, metadata: { ...app.metadata, labels: { step: String(i) } } });
        const compacted = app.metadata.resourceVersion! - 1;
        await raw.kv.compact({ revision: compacted });
        const errors: StoreError[] = [];
        const seen: WatchEvent[] = [];
        const watch = await store.watch({ fromRevision: start }, (e) => seen.push(e), (e) => errors.push(e)).catch((e: unknown) => e);
        if (!(watch instanceof GoneError)) await waitFor(() => errors.length === 1, 'onError');
        expect(watch instanceof GoneError ? watch : errors[0]).toBeInstanceOf(GoneError);
        expect(seen).toEqual([]);
        expect(await store.compactedRevision()).toBe(compacted);
        // Now known, it is refused at watch() itself.
        await expect(store.watch({ fromRevision: start }, () => {})).rejects.toBeInstanceOf(GoneError);
      } finally {
        await store.close();
        await raw.delete().prefix(prefix);
      }
    });

    it('a live watch that meets an unreadable change ends with onError(UnreadableError) instead of skipping it', async () => {
      const prefix = freshPrefix();
      const store = await openEtcdStore({ endpoints: cluster.endpointList, prefix });
      try {
        const errors: StoreError[] = [];
        const seen: WatchEvent[] = [];
        await store.watch({ kind: 'App', fromRevision: await store.revision() }, (e) => seen.push(e), (e) => errors.push(e));
        await store.create(makeApp('web'));
        await raw.put(`${prefix}o/App/web`).value('{"kind":"App","metadata":{"na');
        await waitFor(() => errors.length === 1, 'onError');
        expect(errors[0]).toBeInstanceOf(UnreadableError);
        expect(errors[0]!.message).toMatch(/^cannot read App "web" from the store: not JSON/);
        expect(seen.map((e) => e.type)).toEqual(['ADDED']);
        expect(store.watchCount).toBe(0);
      } finally {
        await store.close();
        await raw.delete().prefix(prefix);
      }
    });

    it('a watch whose stream stays lost past 6 call deadlines ends with onError(UnavailableError) naming etcd', async () => {
      const prefix = freshPrefix();
      const proxy = new TcpProxy(Number(new URL(cluster.endpointList[0]!).port));
      const url = await proxy.start();
      const store = await openEtcdStore({ endpoints: [url], prefix, callTimeoutMs: 500 });
      try {
        const errors: StoreError[] = [];
        await store.watch({ fromRevision: await store.revision() }, () => {}, (e) => errors.push(e));
        proxy.cut();
        await waitFor(() => errors.length === 1, 'onError', 20_000);
        expect(errors[0]).toBeInstanceOf(UnavailableError);
        expect(errors[0]!.message).toContain(`etcd at ${url} did not answer`);
        await expect(store.create(makeApp('web'))).rejects.toBeInstanceOf(UnavailableError);
      } finally {
        await store.close();
        await proxy.close();
      }
    });
  });
});
