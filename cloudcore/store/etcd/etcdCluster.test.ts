import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, etcdUnavailable, freeLoopbackPort } from '../../../test/helpers/etcdCluster.js';
import { makeEtcdTlsMaterial, startTlsEtcdMember, type EtcdTlsMaterial } from '../../../test/helpers/etcdTls.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { makeApp } from '../../../test/store/fixtures.js';
import type { WatchEvent } from '../store.js';
import { checkEtcdCluster } from './etcdCluster.js';
import { openEtcdStore } from './etcdStore.js';

/**
 * `checkEtcdCluster`, cloudcore's startup check of its etcd settings, against real members: a
 * 3-member cluster, a single-member second cluster, and a single TLS member that demands client
 * certificates. Every failure must name the setting to fix and the endpoint.
 */

const skipReason = etcdUnavailable();

describe.skipIf(skipReason)(`checkEtcdCluster${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let cluster: EtcdCluster;
  let stranger: EtcdCluster;
  let dir: string;
  let tls: EtcdTlsMaterial;
  let tlsMember: { clientUrl: string; process: ChildProcess };
  const good = () => ({ caFile: tls.caFile, certFile: tls.clientCertFile, keyFile: tls.clientKeyFile });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgefleet-etcd-tls-'));
    [cluster, stranger, tls] = await Promise.all([EtcdCluster.start({ size: 3 }), EtcdCluster.start({ size: 1 }), makeEtcdTlsMaterial(dir)]);
    tlsMember = await startTlsEtcdMember(dir, tls);
    await waitFor('the TLS member to answer', () => checkEtcdCluster({ endpoints: [tlsMember.clientUrl], tls: good(), callTimeoutMs: 2000 }), 30_000, 200);
  });
  afterAll(async () => {
    if (tlsMember?.process.exitCode === null) {
      const exited = new Promise((resolve) => tlsMember.process.once('exit', resolve));
      tlsMember.process.kill('SIGKILL');
      await exited;
    }
    await cluster?.stop();
    await stranger?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('accepts the members of one cluster and says what it found', async () => {
    const info = await checkEtcdCluster({ endpoints: cluster.endpointList, callTimeoutMs: 2000 });
    expect(info).toMatchObject({ members: 3, hasLeader: true, version: expect.stringMatching(/^3\.4\./) as unknown });
    expect(info.clusterId).toMatch(/^[0-9a-f]+$/);
    // One member is enough to name the cluster; the count is the cluster's.
    expect(await checkEtcdCluster({ endpoints: [cluster.endpointList[1]!] })).toMatchObject({ clusterId: info.clusterId, members: 3 });
  });

  it('a malformed endpoint or one nobody answers on names --etcd-endpoints and the endpoint', async () => {
    await expect(checkEtcdCluster({ endpoints: ['127.0.0.1:2379'] })).rejects.toThrow(/^--etcd-endpoints: .*127\.0\.0\.1:2379/);
    await expect(checkEtcdCluster({ endpoints: [] })).rejects.toThrow(/^--etcd-endpoints is empty/);
    const nobody = `http://127.0.0.1:${await freeLoopbackPort()}`;
    await expect(checkEtcdCluster({ endpoints: [cluster.endpointList[0]!, nobody], callTimeoutMs: 2000 }))
      .rejects.toThrow(new RegExp(`^--etcd-endpoints: etcd at ${nobody} did not answer`));
  });

  it('a member of another cluster among the endpoints is named', async () => {
    const other = stranger.endpointList[0]!;
    await expect(checkEtcdCluster({ endpoints: [...cluster.endpointList, other], callTimeoutMs: 2000 }))
      .rejects.toThrow(new RegExp(`^--etcd-endpoints: ${other} belongs to etcd cluster [0-9a-f]+, not to cluster [0-9a-f]+ of ${cluster.endpointList[0]}`));
  });

  it('TLS: the right CA and client certificate pass', async () => {
    expect(await checkEtcdCluster({ endpoints: [tlsMember.clientUrl], tls: good(), callTimeoutMs: 2000 })).toMatchObject({ members: 1 });
  });

  it('TLS: the store itself works over TLS with a client certificate', async () => {
    const store = await openEtcdStore({ endpoints: [tlsMember.clientUrl], tls: good(), prefix: '/tls-store/' });
    try {
      const seen: WatchEvent[] = [];
      const watch = await store.watch({ fromRevision: await store.revision() }, (e) => seen.push(e));
      const app = await store.create(makeApp('web'));
      expect(await store.get('App', 'web')).toEqual(app);
      await waitFor('the watch over TLS', () => seen.length === 1);
      expect(seen[0]!.object).toEqual(app);
      watch.close();
    } finally {
      await store.close();
    }
  });

  it('TLS: an https endpoint without --etcd-ca, or with the wrong CA, names --etcd-ca', async () => {
    const url = tlsMember.clientUrl;
    await expect(checkEtcdCluster({ endpoints: [url], callTimeoutMs: 2000 }))
      .rejects.toThrow(new RegExp(`^--etcd-ca: the certificate of ${url} is not signed by any CA this system trusts \\(no --etcd-ca given\\)`));
    await expect(checkEtcdCluster({ endpoints: [url], tls: { ...good(), caFile: tls.otherCaFile }, callTimeoutMs: 2000 }))
      .rejects.toThrow(new RegExp(`^--etcd-ca: the certificate of ${url} is not signed by the CA in --etcd-ca ${tls.otherCaFile}`));
  });

  it('TLS: no client certificate for a member that demands one names --etcd-cert/--etcd-key', async () => {
    await expect(checkEtcdCluster({ endpoints: [tlsMember.clientUrl], tls: { caFile: tls.caFile }, callTimeoutMs: 2000 }))
      .rejects.toThrow(new RegExp(`^--etcd-cert/--etcd-key: ${tlsMember.clientUrl} refused no client certificate`));
    await expect(checkEtcdCluster({ endpoints: [tlsMember.clientUrl], tls: { caFile: tls.caFile, certFile: tls.clientCertFile } }))
      .rejects.toThrow(/^--etcd-cert and --etcd-key go together: --etcd-key is missing/);
  });

  it('TLS: plain http to a TLS member, and https to a plain one, name --etcd-endpoints', async () => {
    const plainToTls = tlsMember.clientUrl.replace('https:', 'http:');
    await expect(checkEtcdCluster({ endpoints: [plainToTls], callTimeoutMs: 2000 }))
      .rejects.toThrow(new RegExp(`^--etcd-endpoints: ${plainToTls} serves TLS; use https://`));
    const tlsToPlain = cluster.endpointList[0]!.replace('http:', 'https:');
    await expect(checkEtcdCluster({ endpoints: [tlsToPlain], tls: good(), callTimeoutMs: 2000 }))
      .rejects.toThrow(new RegExp(`^--etcd-endpoints: ${tlsToPlain} does not serve TLS`));
  });
});
