import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeStatusSchema, type EdgeStatus } from '../../protocol/edgeStatus.js';
import { Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { tlsApi } from '../helpers/tlsClient.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The real edgecore binary against the real cloudcore over HTTPS (30-second certificates, its shortest): it
 * joins with a pinned token, links with mutual TLS, renews while running (one reconnect per
 * renewal) and shows its identity on /status. Stopped past expiry, within and past the grace
 * window: offlineExpiry.test.ts.
 */

const fleet = new Fleet();
let cloud: Cloud;

beforeAll(async () => { cloud = await fleet.startCloud({ tls: true, extra: ['--node-cert-lifetime-seconds', '30'] }); });
afterAll(() => fleet.cleanup());

async function status(edge: Edge): Promise<EdgeStatus> {
  return EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json());
}

/** cloudcore's log lines `msg` about `node`. */
const cloudSaid = (msg: string, node: string) => cloud.proc.lines.filter((l) => l.msg === msg && l.node === node);

describe('edgecore with a node certificate', () => {
  it('joins, links over mutual TLS, renews while running with one reconnect each, and shows its identity', async () => {
    const edge = await fleet.startEdge({ node: 'edge-p', cloudUrl: cloud.url, joinToken: await tlsApi(cloud).token('edge-p') });
    const dataDir = edge.dataDir;
    const first = await waitFor('linked', async () => { const s = await status(edge); return s.link.state === 'connected' ? s : undefined; });
    expect(first.identity).toMatchObject({ mode: 'certificate', standing: 'valid', lastRenewalError: null });
    // The certificate the edge shows is the one cloudcore logged joining, for this node.
    const joined = await waitFor('cloudcore logged the join', () => cloudSaid('node joined', 'edge-p')[0]);
    expect(first.identity?.serial).toBe(joined.serial);
    expect(new X509Certificate(readFileSync(join(dataDir, 'pki', 'node.crt'))).subject).toMatch(/CN=edge-p/);
    expect(statSync(join(dataDir, 'pki', 'node.key')).mode & 0o777).toBe(0o600);
    expect((await tlsApi(cloud).call('GET', '/nodes/edge-p')).status).toBe(200);

    // Two renewals (each at 2/3 of a 30 s life).
    const renewed = await waitFor('two renewals', async () => {
      const s = await status(edge);
      return cloudSaid('renewed a node certificate', 'edge-p').length >= 2 && s.link.state === 'connected' && s.link.stats?.connects === 3 ? s : undefined;
    }, 60_000, 500);
    const renewals = cloudSaid('renewed a node certificate', 'edge-p');
    expect(renewed.identity?.serial).toBe(renewals.at(-1)?.serial);
    const serials = [joined.serial, ...renewals.map((l) => l.serial)];
    expect(new Set(serials).size).toBe(serials.length);
    // One connect per certificate: renewals do not make the link flap; the cloud saw one link end per renewal.
    expect(renewed.link.stats?.connects).toBe(serials.length);
    expect(edge.proc.lines.filter((l) => l.msg === 'node identity renewed').length).toBe(renewals.length);
    await waitFor('cloudcore saw the old links end', () => cloudSaid('edge disconnected', 'edge-p').length === renewals.length, 10_000);
    expect(cloudSaid('edge connect refused', 'edge-p')).toEqual([]);
    // The key is never logged, by either side.
    const key = readFileSync(join(dataDir, 'pki', 'node.key'), 'utf8').split('\n')[1]!;
    expect(edge.proc.rawLines.some((l) => l.includes(key))).toBe(false);
    expect(cloud.proc.rawLines.some((l) => l.includes(key))).toBe(false);
    await edge.proc.stop();
  }, 100_000);
});
