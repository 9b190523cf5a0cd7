import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EdgeStatusSchema } from '../../protocol/edgeStatus.js';
import { Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { tlsApi } from '../helpers/tlsClient.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Rotating the cloud CA itself, by the procedure docs/security.md gives, with a real cloudcore
 * and a real edgecore: the new CA joins the bundle first (edges learn it at their next renewal),
 * then signs (the old one stays trusted), and the edge ends with a certificate of the new CA,
 * never having lost its link for more than a reconnect or needed a new token.
 */
describe('rotating the cloud CA', () => {
  const fleet = new Fleet();
  afterAll(() => fleet.cleanup());

  const linked = async (edge: Edge) => EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json()).link.state === 'connected';
  const renewals = (edge: Edge) => edge.proc.lines.filter((l) => l.msg === 'node identity renewed').length;
  const verifies = (caFile: string, certFile: string) => {
    try {
      return execFileSync('openssl', ['verify', '-CAfile', caFile, certFile], { encoding: 'utf8' }).includes(': OK');
    } catch {
      return false;
    }
  };

  it('new CA in the bundle, then signing, then alone: the edge follows without a new token', async () => {
    const dir = fleet.tempDir();
    const newCa = join(dir, 'new-ca.crt');
    const newKey = join(dir, 'new-ca.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=EdgeFleet new CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', newKey, '-out', newCa, '-days', '2'], { stdio: 'ignore' });
    // 30 s certificates (cloudcore's shortest): each step waits for one renewal, at 2/3 of that.
    const lifetime = ['--node-cert-lifetime-seconds', '30'];
    let cloud: Cloud = await fleet.startCloud({ tls: true, extra: lifetime });
    const { dataDir, port } = cloud;
    const oldCa = join(dataDir, 'pki', 'ca.crt');
    const edge = await fleet.startEdge({ node: 'edge-ca', cloudUrl: cloud.url, joinToken: await tlsApi(cloud).token('edge-ca') });
    await waitFor('linked to the old CA\'s cloud', () => linked(edge));
    const bundle = join(edge.dataDir, 'pki', 'ca-bundle.crt');
    expect(readFileSync(bundle, 'utf8')).not.toContain(readFileSync(newCa, 'utf8').split('\n')[1]);

    // 1. The new CA joins the bundle; the old one still signs. The next renewal brings the bundle.
    await cloud.proc.stop();
    cloud = await fleet.startCloud({ tls: true, dataDir, port, extra: [...lifetime, '--ca-extra-trust', newCa] });
    const before1 = renewals(edge);
    await waitFor('renewed with the two-CA bundle', () => renewals(edge) > before1 && readFileSync(bundle, 'utf8').includes(readFileSync(newCa, 'utf8').split('\n')[1]!), 40_000, 500);
    await waitFor('linked', () => linked(edge));

    // 2. The new CA signs; the old one stays trusted for certificates it signed.
    await cloud.proc.stop();
    cloud = await fleet.startCloud({ tls: true, dataDir, port, extra: [...lifetime, '--ca-cert', newCa, '--ca-key', newKey, '--ca-extra-trust', oldCa] });
    await waitFor('linked to the cloud serving a certificate of the new CA', () => linked(edge), 30_000);
    const before2 = renewals(edge);
    await waitFor('renewed by the new CA', () => renewals(edge) > before2, 40_000, 500);
    expect(verifies(newCa, join(edge.dataDir, 'pki', 'node.crt'))).toBe(true);
    expect(verifies(oldCa, join(edge.dataDir, 'pki', 'node.crt'))).toBe(false);

    // 3. The old CA leaves: the edge's certificate and its trust both hold.
    await cloud.proc.stop();
    cloud = await fleet.startCloud({ tls: true, dataDir, port, extra: [...lifetime, '--ca-cert', newCa, '--ca-key', newKey] });
    await waitFor('linked with the old CA gone', () => linked(edge), 30_000);
    expect(edge.proc.lines.some((l) => String(l.msg).startsWith('node identity needs a new join token'))).toBe(false);
  }, 150_000);
});
