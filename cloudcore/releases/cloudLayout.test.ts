import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCloudSettings } from '../config.js';

describe('deploy/cloud/cloudcore.yaml', () => {
  it('is a valid cloudcore config with the layout docs/install.md describes', () => {
    const settings = loadCloudSettings({ config: join(import.meta.dirname, '..', '..', 'deploy', 'cloud', 'cloudcore.yaml') }, {});
    expect(settings).toMatchObject({
      dataDir: '/var/lib/edgefleet-cloud', distDir: '/var/lib/edgefleet-cloud/dist', releasePublicKey: '/etc/edgefleet-cloud/release-key.pub', port: 8443,
    });
    expect(settings.advertiseAddress[0]).toBe('cloud.example.com');
  });
});

describe('deploy/scale-out/cloudcore-replica.yaml', () => {
  it('is a valid cloudcore config for one replica over etcd (docs/scale-out.md)', () => {
    const settings = loadCloudSettings({ config: join(import.meta.dirname, '..', '..', 'deploy', 'scale-out', 'cloudcore-replica.yaml') }, {});
    expect(settings).toMatchObject({ store: 'etcd', etcdPrefix: '/edgefleet/', replicaId: 'cloud-a', leaderLeaseSeconds: 5, replicaLeaseSeconds: 10 });
    expect(settings.etcdEndpoints).toHaveLength(3);
    expect(settings.secretKeyFile).toBe('/etc/edgefleet-cloud/secret-encryption.key');
  });

  it('refuses store etcd without endpoints or a shared secret key file, naming the setting', () => {
    expect(() => loadCloudSettings({ store: 'etcd' }, {})).toThrow(/etcdEndpoints.*etcd cluster's client URLs/s);
    expect(() => loadCloudSettings({ store: 'etcd', etcdEndpoints: 'http://127.0.0.1:2379' }, {})).toThrow(/secretKeyFile.*same key file/s);
    expect(() => loadCloudSettings({ store: 'etcd', etcdEndpoints: 'ftp://x', secretKeyFile: '/k' }, {})).toThrow(/etcdEndpoints.*http\(s\) URL of an etcd member/s);
    expect(() => loadCloudSettings({ etcdEndpoints: 'http://127.0.0.1:2379' }, {})).toThrow(/etcdEndpoints.*--store etcd/s);
    expect(() => loadCloudSettings({ store: 'etcd', etcdEndpoints: 'https://127.0.0.1:2379', secretKeyFile: '/k' }, {})).toThrow(/etcdCa/);
  });
});
