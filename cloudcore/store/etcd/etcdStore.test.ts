import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe } from 'vitest';
import type { Kind } from '../../../protocol/index.js';
import { EtcdCluster, etcdUnavailable } from '../../../test/helpers/etcdCluster.js';
import { TcpProxy } from '../../../test/helpers/tcpProxy.js';
import { storeConformanceSuite, type MakeStoreOptions, type StoreUnderTest } from '../../../test/store/conformance.js';
import { distributedConformanceSuite, type ReplicasUnderTest } from '../../../test/store/distributedConformance.js';
import { newKeyFileText, parseKeyFile, SecretSealer } from '../secretSealing.js';
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
});
