import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeStatusSchema, type EdgeStatus } from '../../protocol/edgeStatus.js';
import { Fleet, type Edge } from '../helpers/fleet.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { TlsStubCloud } from './tlsStubCloud.js';

/**
 * The real edgecore binary against the TLS stub hub: it joins with a pinned token, links with
 * mutual TLS, renews while running (one reconnect per renewal), shows its identity on /status,
 * and after a stop past expiry comes back within the grace window, or says it needs a new token.
 */

const fleet = new Fleet();
let cloud: TlsStubCloud;

beforeAll(async () => { cloud = await TlsStubCloud.start({ lifetimeSeconds: 6, graceSeconds: 3600 }); });
afterAll(async () => {
  await fleet.cleanup();
  await cloud.stop();
});

async function status(edge: Edge): Promise<EdgeStatus> {
  return EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json());
}

describe('edgecore with a node certificate', () => {
  let dataDir = '';

  it('joins, links over mutual TLS, renews while running with one reconnect each, and shows its identity', async () => {
    const edge = await fleet.startEdge({ node: 'edge-p', cloudUrl: cloud.url, joinToken: cloud.token });
    dataDir = edge.dataDir;
    const first = await waitFor('linked', async () => { const s = await status(edge); return s.link.state === 'connected' ? s : undefined; });
    expect(first.identity).toMatchObject({ mode: 'certificate', standing: 'valid', lastRenewalError: null });
    expect(first.identity?.serial).toBe(cloud.links[0]?.serial);
    expect(cloud.links[0]?.commonName).toBe('edge-p');
    expect(statSync(join(dataDir, 'pki', 'node.key')).mode & 0o777).toBe(0o600);

    // Two renewals (each at 2/3 of a 6 s life).
    const renewed = await waitFor('two renewals', async () => {
      const s = await status(edge);
      return cloud.links.length >= 3 && s.link.state === 'connected' ? s : undefined;
    }, 30_000);
    expect(renewed.identity?.serial).toBe(cloud.links.at(-1)?.serial);
    expect(new Set(cloud.links.map((l) => l.serial)).size).toBe(cloud.links.length);
    // One connect per certificate: renewals do not make the link flap.
    expect(renewed.link.stats?.connects).toBe(cloud.links.length);
    expect(edge.proc.lines.filter((l) => l.msg === 'node identity renewed').length).toBe(cloud.links.length - 1);
    // The key is never logged.
    const key = readFileSync(join(dataDir, 'pki', 'node.key'), 'utf8').split('\n')[1]!;
    expect(edge.proc.rawLines.some((l) => l.includes(key))).toBe(false);
    await edge.proc.stop();
  }, 60_000);

  it('stopped past expiry, restarted within the grace window: renews and comes back', async () => {
    const linksBefore = cloud.links.length;
    await sleep(6_500);
    const edge = await fleet.startEdge({ node: 'edge-p', cloudUrl: cloud.url, dataDir });
    await waitFor('linked again', async () => (await status(edge)).link.state === 'connected' && cloud.links.length > linksBefore, 20_000);
    expect((await status(edge)).identity?.standing).toMatch(/valid|renew-due/);
    await edge.proc.stop();
  }, 40_000);

  it('past the grace window: status and log say a new join token is needed; a new token brings it back', async () => {
    cloud.renewFailure = { status: 401, code: 'EF_NODE_CERT_EXPIRED', error: 'the node certificate expired past the grace window' };
    await sleep(6_500);
    const edge = await fleet.startEdge({ node: 'edge-p', cloudUrl: cloud.url, dataDir });
    const s = await waitFor('needs a new token', async () => { const st = await status(edge); return st.identity?.standing === 'needs-new-token' ? st : undefined; }, 20_000);
    expect(s.identity?.lastRenewalError).toMatch(/grace window/);
    expect(s.link.state).not.toBe('connected');
    await sleep(2_000);
    // Logged once per state change, not on every failed connect.
    expect(edge.proc.lines.filter((l) => String(l.msg).startsWith('node identity needs a new join token')).length).toBe(1);
    await edge.proc.stop();

    cloud.renewFailure = null;
    cloud.tokenSecret = '99887766';
    cloud.lifetimeSeconds = 3600;
    const back = await fleet.startEdge({ node: 'edge-p', cloudUrl: cloud.url, dataDir, joinToken: cloud.token });
    const ok = await waitFor('back with a new identity', async () => { const st = await status(back); return st.link.state === 'connected' ? st : undefined; }, 20_000);
    expect(ok.identity?.standing).toBe('valid');
  }, 60_000);
});
