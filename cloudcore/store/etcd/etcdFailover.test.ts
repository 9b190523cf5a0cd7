import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, etcdUnavailable } from '../../../test/helpers/etcdCluster.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { makeApp, makeDevice } from '../../../test/store/fixtures.js';
import { UnavailableError, type StoreError, type WatchEvent } from '../store.js';
import { openEtcdStore, type EtcdStore } from './etcdStore.js';

/**
 * The etcd store through member failures of a real 3-member cluster: one member SIGKILLed, then
 * two (no quorum), then back. One cluster for the file, the tests run in order.
 */

const skipReason = etcdUnavailable();

describe.skipIf(skipReason)(`etcd store through member failures${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let cluster: EtcdCluster;
  let store: EtcdStore;
  /** A replica that reaches member 1 alone: its watch stream is certain to break when that member dies. */
  let onMember1: EtcdStore;
  const seenOnMember1: WatchEvent[] = [];
  const seen: WatchEvent[] = [];
  const onNode: WatchEvent[] = [];
  const watchErrors: StoreError[] = [];
  const written: number[] = [];

  beforeAll(async () => {
    cluster = await EtcdCluster.start({ size: 3 });
    store = await openEtcdStore({ endpoints: cluster.endpointList, prefix: '/failover/', callTimeoutMs: 2000 });
    const start = await store.revision();
    await store.watch({ fromRevision: start }, (e) => seen.push(e), (e) => watchErrors.push(e));
    await store.watch({ node: 'node-a', fromRevision: start }, (e) => onNode.push(e), (e) => watchErrors.push(e));
    onMember1 = await openEtcdStore({ endpoints: [cluster.endpointList[1]!], prefix: '/failover/' });
    await onMember1.watch({ node: 'node-a', fromRevision: start }, (e) => seenOnMember1.push(e), (e) => watchErrors.push(e));
  });
  afterAll(async () => {
    await store?.close();
    await onMember1?.close();
    await cluster?.stop();
  });

  async function writeDevices(from: number, count: number): Promise<void> {
    for (let i = from; i < from + count; i++) written.push((await store.create(makeDevice(`dev-${i}`, 'node-a'))).metadata.resourceVersion!);
  }

  function expectDeliveredOnceInOrder(): void {
    expect(seen.map((e) => e.revision)).toEqual(written);
    expect(onNode.map((e) => e.revision)).toEqual(written);
    expect(seenOnMember1.map((e) => e.revision)).toEqual(written);
    expect(watchErrors).toEqual([]);
  }

  it('one member of 3 SIGKILLed: reads, writes and watches go on', async () => {
    await writeDevices(0, 5);
    await cluster.kill(0);
    await writeDevices(5, 10);
    expect((await store.list('Device', { node: 'node-a' })).items).toHaveLength(15);
    await waitFor('the watches to see every write', () => [seen, onNode, seenOnMember1].every((events) => events.length >= written.length));
    expectDeliveredOnceInOrder();
    await cluster.restart(0);
    await cluster.waitHealthy();
  });

  it('two members SIGKILLed: a write fails with UnavailableError naming etcd and changes nothing; after their restart everything works and the watches missed nothing', async () => {
    const before = await store.revision();
    await cluster.kill(1);
    await cluster.kill(2);
    // Once the survivor has no leader, a proposal cannot be appended anywhere: the write's failure
    // means nothing was written (while a leader still believed in itself, the outcome would be unknown).
    await waitFor('the surviving member to lose its leader', async () => {
      const res = await fetch(`${cluster.endpointList[0]}/health`).catch(() => undefined);
      return res !== undefined && ((await res.json()) as { health?: string }).health === 'false';
    }, 20_000);
    const error = await store.create(makeApp('during-outage')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as UnavailableError).statusCode).toBe(503);
    expect((error as UnavailableError).message).toContain(`etcd at ${cluster.endpoints} did not answer within 2 s`);
    await expect(store.get('App', 'during-outage')).rejects.toBeInstanceOf(UnavailableError);

    await cluster.restart(1);
    await cluster.restart(2);
    await cluster.waitHealthy();
    await waitFor('a write to go through again', async () => {
      written.push((await store.create(makeDevice('dev-back', 'node-a'))).metadata.resourceVersion!);
      return true;
    }, 30_000, 250);
    await writeDevices(100, 5);
    expect(await store.get('App', 'during-outage')).toBeUndefined();
    expect(written[15]).toBeGreaterThan(before);
    await waitFor('the watches to see every write', () => [seen, onNode, seenOnMember1].every((events) => events.length >= written.length), 30_000);
    expectDeliveredOnceInOrder();
  });
});
