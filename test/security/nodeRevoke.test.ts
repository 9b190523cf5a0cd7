import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, markerApp, runToEnd, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Ending a node's identity (issue 21's revocation, for today's bearer credentials): `edgectl
 * node revoke` closes the live link at once and refuses the reconnect, and the node keeps its
 * labels and workloads. Joining a node again with a new token ends the old identity's live link
 * too (it used to go on answering pings). Real cloudcore, edgecore and edgectl.
 */
describe('revoking a node', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  const edgectl = (args: string[]) => runToEnd('edgectl', args, { EF_SERVER: cloud.url, EF_TOKEN: cloud.token });

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    await api(cloud).call('PATCH', '/nodes/edge-1', { metadata: { labels: { site: 'a' } } });
    expect((await api(cloud).call('POST', '/apps', markerApp('keeper', `${fleet.tempDir()}/marker`))).status).toBe(201);
    await waitFor('keeper running', () => fleet.runningWorkload(edge, 'keeper'));
  });
  afterAll(() => fleet.cleanup());

  it('closes the live link and refuses the reconnect, naming what to do; the node, its labels and workloads stay', async () => {
    const r = await edgectl(['node', 'revoke', 'edge-1']);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('node/edge-1 revoked: it needs a new join token (edgectl token create edge-1) to connect again');
    await waitFor('the cloud closed the link', () => cloud.proc.lines.find((l) => l.msg === 'closing the link of a node whose identity ended' && l.node === 'edge-1'));
    const status = await waitFor('the edge refused with 401', async () => {
      const link = (await fleet.edgeStatus(edge)).link as { state: string; lastError: string | null };
      return link.state !== 'connected' && link.lastError?.includes('HTTP 401') ? link : undefined;
    });
    expect(status.lastError).toContain('remove node.credential from the data dir and start edgecore with a new join token');

    const node = await api(cloud).call<{ metadata: { labels: Record<string, string> } }>('GET', '/nodes/edge-1');
    expect(node.status).toBe(200);
    expect(node.body.metadata.labels).toEqual({ site: 'a' });
    const workloads = (await api(cloud).call<{ items: { metadata: { name: string } }[] }>('GET', '/workloads')).body.items.map((w) => w.metadata.name);
    expect(workloads).toContain('keeper.edge-1');
    // The edge keeps running what it has (autonomy): revoking ends the identity, not the work.
    expect(await fleet.runningWorkload(edge, 'keeper')).toBeDefined();

    const again = await edgectl(['node', 'revoke', 'edge-1']);
    expect(again.out.trim()).toBe('node/edge-1 had no credential to revoke (it has not joined, or was revoked already)');
    const missing = await edgectl(['node', 'revoke', 'edge-404']);
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain('edge-404');
  });

  it('is an admin action: a readonly token is refused and nothing changes', async () => {
    const readonly = (await import('node:fs')).readFileSync(`${cloud.dataDir}/readonly.token`, 'utf8').trim();
    const r = await api(cloud).call('POST', '/nodes/edge-1/revoke', undefined, readonly);
    expect(r.status).toBe(403);
  });
});
