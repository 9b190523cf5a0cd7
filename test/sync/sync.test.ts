import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, markerApp, type Cloud, type Edge } from '../helpers/fleet.js';
import { isAlive, waitFor } from '../helpers/wait.js';

/** Issue 2, test 2: apply → process runs on each selected node; update restarts; delete stops; labels move. */
describe('cloud → edge sync', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  const edges: Record<string, Edge> = {};
  const marker = (node: string) => join(fleet.root, `${node}.marker`);

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    for (const node of ['edge-1', 'edge-2']) {
      const token = await api(cloud).token(node);
      edges[node] = await fleet.startEdge({ node, cloudUrl: cloud.url, joinToken: token });
    }
    await api(cloud).call('PATCH', '/nodes/edge-1', { metadata: { labels: { zone: 'a' } } });
    await api(cloud).call('PATCH', '/nodes/edge-2', { metadata: { labels: { zone: 'b' } } });
  });
  afterAll(() => fleet.cleanup());

  const workload = async (node: string, name: string) => (await fleet.edgeStatus(edges[node]!)).workloads.find((w) => w.name === name);

  it('an app applied in the cloud starts a process on each selected node', async () => {
    const app = markerApp('everywhere', join(fleet.root, 'everywhere-$(hostname).marker'));
    expect((await api(cloud).call('POST', '/apps', app)).status).toBe(201);
    for (const node of ['edge-1', 'edge-2']) {
      const w = await waitFor(`everywhere running on ${node}`, async () => {
        const found = await workload(node, 'everywhere');
        return found?.status?.state === 'Running' ? found : undefined;
      });
      expect(isAlive(w.status!.pid!)).toBe(true);
    }
    const status = await waitFor('cloud sees both Running', async () => {
      const r = await api(cloud).call<{ status: { nodes: { node: string; state: string }[] } }>('GET', '/apps/everywhere');
      return r.body.status.nodes.filter((n) => n.state === 'Running').length === 2 ? r.body.status.nodes : undefined;
    });
    expect(status.map((n) => n.node).sort()).toEqual(['edge-1', 'edge-2']);
  });

  it('an update restarts it with the new spec; a delete stops it', async () => {
    const app = markerApp('zoned', marker('zoned'), { matchLabels: { zone: 'a' } });
    await api(cloud).call('POST', '/apps', app);
    const first = await waitFor('zoned running on edge-1', async () => {
      const w = await workload('edge-1', 'zoned');
      return w?.status?.state === 'Running' ? w : undefined;
    });
    expect(await workload('edge-2', 'zoned')).toBeUndefined();

    app.spec.template.env.EF_VERSION = 'v2';
    expect((await api(cloud).call('PUT', '/apps/zoned', app)).status).toBe(200);
    const second = await waitFor('zoned restarted with generation 2', async () => {
      const w = await workload('edge-1', 'zoned');
      return w?.status?.state === 'Running' && w.generation === 2 && w.status.pid !== first.status!.pid ? w : undefined;
    });
    await waitFor('old process gone', () => !isAlive(first.status!.pid!));
    await waitFor('new spec ran', () => readFileSync(marker('zoned'), 'utf8').includes('started v2'));

    expect((await api(cloud).call('DELETE', '/apps/zoned')).status).toBe(200);
    await waitFor('zoned removed from edge-1', async () => (await workload('edge-1', 'zoned')) === undefined);
    await waitFor('process stopped', () => !isAlive(second.status!.pid!));
  });

  it('a label change moves the app from one node to the other', async () => {
    await api(cloud).call('POST', '/apps', markerApp('mover', marker('mover'), { matchLabels: { role: 'worker' } }));
    await api(cloud).call('PATCH', '/nodes/edge-1', { metadata: { labels: { role: 'worker' } } });
    const onOne = await waitFor('mover on edge-1', async () => {
      const w = await workload('edge-1', 'mover');
      return w?.status?.state === 'Running' ? w : undefined;
    });
    await api(cloud).call('PATCH', '/nodes/edge-1', { metadata: { labels: { role: null } } });
    await api(cloud).call('PATCH', '/nodes/edge-2', { metadata: { labels: { role: 'worker' } } });
    await waitFor('mover on edge-2', async () => (await workload('edge-2', 'mover'))?.status?.state === 'Running');
    await waitFor('mover gone from edge-1', async () => (await workload('edge-1', 'mover')) === undefined);
    await waitFor('edge-1 process stopped', () => !isAlive(onOne.status!.pid!));
  });
});
