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
