import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubRequest } from '../../edgecore/identity/hubRequest.js';
import { EdgeStatusSchema, type EdgeStatus } from '../../protocol/edgeStatus.js';
import { Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * An edge stopped past its certificate's expiry, with the real cloudcore (60 s certificates,
 * 30 s grace): restarted within the grace window it renews and comes back; past it, its status
 * page and log say it needs a new join token, and a new token brings it back.
 */

async function status(edge: Edge): Promise<EdgeStatus> {
  return EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json());
}

const GRACE_SECONDS = 30;

describe('offline past expiry', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  const token = async (node: string) => {
    const answer = await hubRequest(new URL('/api/v1/tokens', cloud.url), {
      method: 'POST', body: { node }, headers: { authorization: `Bearer ${cloud.token}` }, tls: { ca: readFileSync(join(cloud.dataDir, 'pki', 'ca.crt'), 'utf8') },
    });
    return (answer.json as { token: string }).token;
  };
  const notAfter = (edge: Edge) => Date.parse(new X509Certificate(readFileSync(join(edge.dataDir, 'pki', 'node.crt'))).validTo);

  beforeAll(async () => {
    cloud = await fleet.startCloud({ tls: true, extra: ['--node-cert-lifetime-seconds', '60', '--node-cert-grace-seconds', String(GRACE_SECONDS)] });
  });
  afterAll(() => fleet.cleanup());

  it('within grace it comes back; past grace it says it needs a new token; a new token brings it back', async () => {
    let edge = await fleet.startEdge({ node: 'edge-o', cloudUrl: cloud.url, joinToken: await token('edge-o') });
    await waitFor('linked', async () => (await status(edge)).link.state === 'connected');
    await edge.proc.stop();
    const dataDir = edge.dataDir;

    // Offline until just past expiry (inside the 30 s grace window).
    await sleep(Math.max(0, notAfter(edge) - Date.now()) + 3_000);
    edge = await fleet.startEdge({ node: 'edge-o', cloudUrl: cloud.url, dataDir });
    const back = await waitFor('back within grace', async () => { const s = await status(edge); return s.link.state === 'connected' ? s : undefined; }, 20_000);
    expect(back.identity?.standing).toBe('valid');
    expect(edge.proc.lines.some((l) => l.msg === 'node identity renewed')).toBe(true);
    await edge.proc.stop();

    // Offline past expiry and the grace window.
    await sleep(Math.max(0, notAfter(edge) + GRACE_SECONDS * 1000 - Date.now()) + 3_000);
    edge = await fleet.startEdge({ node: 'edge-o', cloudUrl: cloud.url, dataDir });
    const stuck = await waitFor('needs a new token', async () => { const s = await status(edge); return s.identity?.standing === 'needs-new-token' ? s : undefined; }, 20_000);
    expect(stuck.link.state).not.toBe('connected');
    expect(stuck.identity?.lastRenewalError).toMatch(/grace window/);
    await sleep(2_000);
    const said = edge.proc.lines.filter((l) => String(l.msg).startsWith('node identity needs a new join token'));
    expect(said).toHaveLength(1);
    expect(said[0]?.level).toBe(50);
    await edge.proc.stop();

    edge = await fleet.startEdge({ node: 'edge-o', cloudUrl: cloud.url, dataDir, joinToken: await token('edge-o') });
    const rejoined = await waitFor('back with a new token', async () => { const s = await status(edge); return s.link.state === 'connected' ? s : undefined; }, 20_000);
    expect(rejoined.identity?.standing).toBe('valid');
  }, 240_000);
});
