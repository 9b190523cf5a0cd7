import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, etcdUnavailable } from '../../test/helpers/etcdCluster.js';
import { parseKeyFile, SecretSealer } from '../store/secretSealing.js';
import { ClusterSecrets } from './clusterSecrets.js';
import { clusterKey, getKey } from './etcdCalls.js';

const skipReason = etcdUnavailable();

function sealer(id = 'k1'): SecretSealer {
  return new SecretSealer(parseKeyFile(`${id}:${randomBytes(32).toString('base64')}\n`, 'test key file'));
}

describe.skipIf(skipReason)(`cluster secrets on a real 3-member etcd${skipReason ? ` (SKIPPED: ${skipReason})` : ''}`, () => {
  let cluster: EtcdCluster;
  const clients: Etcd3[] = [];
  const prefix = '/ef-test-secrets/';

  beforeAll(async () => { cluster = await EtcdCluster.start(); });
  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  function client(): Etcd3 {
    const c = new Etcd3({ hosts: cluster.endpointList });
    clients.push(c);
    return c;
  }

  it('five replicas racing to create a secret all get the one value stored, sealed at rest', async () => {
    const shared = sealer();
    const replicas = Array.from({ length: 5 }, () => new ClusterSecrets(client(), prefix, shared));
    const values = await Promise.all(replicas.map((r, i) => r.getOrCreate('replica-token', () => `token-of-replica-${i}`)));
    expect(new Set(values).size).toBe(1);
    expect(values[0]).toMatch(/^token-of-replica-\d$/);
    const { kv } = await getKey(clients[0]!, clusterKey(prefix, 'cluster/secrets/replica-token'));
    const stored = kv!.value.toString();
    expect(stored.startsWith('ef-sealed:v1:k1:')).toBe(true);
    expect(stored).not.toContain('token-of-replica');
    // Later calls read it; `make` is not called again.
    expect(await replicas[3]!.getOrCreate('replica-token', () => { throw new Error('must not be made again'); })).toBe(values[0]);
  });

  it('a replica with another secret key file is told exactly that', async () => {
    await new ClusterSecrets(client(), prefix, sealer('k1')).getOrCreate('operator-token', () => 'op-secret');
    const wrong = new ClusterSecrets(client(), prefix, sealer('k2'));
    await expect(wrong.getOrCreate('operator-token', () => 'other')).rejects.toThrow(
      /cluster secret operator-token in etcd cannot be opened: its value is sealed with key "k1", which is not in the secret key file\. Every replica must use the same secret key file \(--secret-key-file\)/);
    // Same key id, different key bytes: still the same advice.
    const sameIdOtherKey = new ClusterSecrets(client(), prefix, sealer('k1'));
    await expect(sameIdOtherKey.getOrCreate('operator-token', () => 'other')).rejects.toThrow(/does not open with key "k1".*Every replica must use the same secret key file/);
  });

  it('refuses a name that would leave the secrets prefix', async () => {
    const secrets = new ClusterSecrets(client(), prefix, sealer());
    await expect(secrets.getOrCreate('../leader', () => 'x')).rejects.toThrow(/cluster secret "..\/leader": a cluster secret name is/);
  });
});
