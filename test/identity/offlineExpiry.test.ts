import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubRequest } from '../../edgecore/identity/hubRequest.js';
import { EdgeStatusSchema, type EdgeStatus } from '../../protocol/edgeStatus.js';
import { Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * An edge stopped past its certificate's expiry, with the real cloudcore (30 s certificates,
 * cloudcore's shortest, and a 20 s grace): restarted within the grace window it renews and comes
 * back; past it, its status page and log say it needs a new join token, and a new token brings
 * it back. Two nodes, stopped at the same moment, wait out the two offline spans side by side.
 */

async function status(edge: Edge): Promise<EdgeStatus> {
  return EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json());
}

const LIFETIME_SECONDS = 30;
/** Long enough that an edge restarted 3 s after expiry starts and renews well inside it on a loaded machine. */
const GRACE_SECONDS = 20;

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
  /** Joins `node`, waits for its link, stops it: an edge that goes offline with a fresh certificate. */
  const joinedThenStopped = async (node: string) => {
    const edge = await fleet.startEdge({ node, cloudUrl: cloud.url, joinToken: await token(node) });
    await waitFor(`${node} linked`, async () => (await status(edge)).link.state === 'connected');
    await edge.proc.stop();
    return edge;
  };

  beforeAll(async () => {
    cloud = await fleet.startCloud({ tls: true, extra: ['--node-cert-lifetime-seconds', String(LIFETIME_SECONDS), '--node-cert-grace-seconds', String(GRACE_SECONDS)] });
  });
  afterAll(() => fleet.cleanup());

  it('within grace it comes back; past grace it says it needs a new token; a new token brings it back', async () => {
    const [inGrace, pastGrace] = await Promise.all([joinedThenStopped('edge-o'), joinedThenStopped('edge-x')]);

    const withinGrace = async () => {
      // Offline until just past expiry (inside the grace window).
      await sleep(Math.max(0, notAfter(inGrace) - Date.now()) + 3_000);
      const edge = await fleet.startEdge({ node: 'edge-o', cloudUrl: cloud.url, dataDir: inGrace.dataDir });
      const back = await waitFor('back within grace', async () => { const s = await status(edge); return s.link.state === 'connected' ? s : undefined; }, 20_000);
      expect(back.identity?.standing).toBe('valid');
      expect(edge.proc.lines.some((l) => l.msg === 'node identity renewed')).toBe(true);
      await edge.proc.stop();
    };

    const beyondGrace = async () => {
      // Offline past expiry and the grace window.
      const { dataDir } = pastGrace;
      await sleep(Math.max(0, notAfter(pastGrace) + GRACE_SECONDS * 1000 - Date.now()) + 3_000);
      let edge = await fleet.startEdge({ node: 'edge-x', cloudUrl: cloud.url, dataDir });
      const stuck = await waitFor('needs a new token', async () => { const s = await status(edge); return s.identity?.standing === 'needs-new-token' ? s : undefined; }, 20_000);
      expect(stuck.link.state).not.toBe('connected');
      expect(stuck.identity?.lastRenewalError).toMatch(/grace window/);
      await sleep(2_000);
      const said = edge.proc.lines.filter((l) => String(l.msg).startsWith('node identity needs a new join token'));
      expect(said).toHaveLength(1);
      expect(said[0]?.level).toBe(50);
      await edge.proc.stop();

      edge = await fleet.startEdge({ node: 'edge-x', cloudUrl: cloud.url, dataDir, joinToken: await token('edge-x') });
      const rejoined = await waitFor('back with a new token', async () => { const s = await status(edge); return s.link.state === 'connected' ? s : undefined; }, 20_000);
      expect(rejoined.identity?.standing).toBe('valid');
    };

    // Both to their end before failing on either, so neither is left running into the cleanup.
    const results = await Promise.allSettled([withinGrace(), beyondGrace()]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }, 150_000);
});
