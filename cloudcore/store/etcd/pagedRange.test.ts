import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, etcdUnavailable } from '../../../test/helpers/etcdCluster.js';
import { rangePaged } from './pagedRange.js';

const unavailable = etcdUnavailable();

describe.skipIf(unavailable)(`prefix reads in pages${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let cluster: EtcdCluster;
  let client: Etcd3;
  beforeAll(async () => {
    cluster = await EtcdCluster.start({ size: 1 });
    client = new Etcd3({ hosts: cluster.endpointList });
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await cluster?.stop();
  });

  it('reads every key once, in key order, as of the first page even while keys are written between pages', async () => {
    for (let i = 0; i < 10; i++) await client.put(`/paged/k${i}`).value(String(i));
    await client.put('/pagedX').value('outside the prefix');
    let pages = 0;
    const { kvs, revision } = await rangePaged(async (request) => {
      const res = await client.kv.range(request);
      // A write between pages: not in the snapshot the first page fixed.
      if (++pages === 1) await client.put('/paged/k05').value('late');
      return res;
    }, '/paged/', { pageSize: 3 });
    expect(pages).toBe(4);
    expect(kvs.map((kv) => kv.key.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `/paged/k${i}`));
    expect(kvs.every((kv) => Number(kv.mod_revision) <= revision)).toBe(true);
  });
});
