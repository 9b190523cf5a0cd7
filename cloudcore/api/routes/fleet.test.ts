import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../../protocol/index.js';
import { eventually, NdjsonReader, READONLY_TOKEN, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';
import type { FleetPage } from '../views/fleetView.js';

const node = (name: string, phase: Node['status']['phase'], labels: Record<string, string>): Node => ({
  kind: 'Node', metadata: { name, labels }, spec: {},
  status: { phase, since: new Date().toISOString(), lastSeen: null, epoch: null, ackedRevision: 0, agent: null },
});

describe('GET /api/v1/fleet and /nodes/{n}/stats (real API, real SQLite store)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
    for (let i = 0; i < 30; i++) {
      await api.store.create(node(`edge-${String(i).padStart(2, '0')}`, i % 3 === 0 ? 'Ready' : i % 3 === 1 ? 'Offline' : 'Pending', { zone: i < 10 ? 'north' : 'south' }));
    }
  });
  afterAll(async () => api.close());

  it('pages through the fleet with totals by phase', async () => {
    const r = await api.call('GET', '/fleet?limit=10&offset=20&sort=name&order=desc', { token: READONLY_TOKEN });
    expect(r.status).toBe(200);
    const page = r.body as FleetPage;
    expect(page.items.map((n) => n.name)).toEqual(Array.from({ length: 10 }, (_, i) => `edge-${String(9 - i).padStart(2, '0')}`));
    expect(page.totals).toMatchObject({ nodes: 30, byPhase: { Ready: 10, Offline: 10, Pending: 10 } });
    expect(page.matched).toBe(30);
    expect(page.resourceVersion).toBeGreaterThan(0);
  });

  it('filters by label selector and status on the server', async () => {
    const page = (await api.call('GET', `/fleet?labelSelector=${encodeURIComponent('zone=north')}&status=Ready`)).body as FleetPage;
    expect(page.items.map((n) => n.name)).toEqual(['edge-00', 'edge-03', 'edge-06', 'edge-09']);
    expect(page.matched).toBe(4);
  });

  it('follows store changes without a restart (labels, new nodes, workloads)', async () => {
    await api.call('GET', '/fleet'); // index built
    expect((await api.call('PATCH', '/nodes/edge-29', { body: { metadata: { labels: { zone: 'north' } } } })).status).toBe(200);
    await api.store.create(node('edge-new', 'Pending', { zone: 'north' }));
    await eventually(async () => ((await api.call('GET', '/fleet?labelSelector=zone%3Dnorth')).body as FleetPage).matched === 12);
  });

  it('refuses a bad query naming the field, and answers 401 without a token', async () => {
    const bad = await api.call('GET', '/fleet?sort=colour');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: 'sort' });
    const selector = await api.call('GET', '/fleet?labelSelector=%3D%3D');
    expect(selector.status).toBe(400);
    expect((await api.call('GET', '/fleet?limit=100000')).body).toMatchObject({ field: 'limit' });
    expect((await api.call('GET', '/fleet', { token: null })).status).toBe(401);
  });

  it('streams coalesced change notices for what a page shows', async () => {
    const abort = new AbortController();
    try {
      const from = (await api.call('GET', '/healthz')).body as { revision: number };
      const res = await api.stream(`/fleet/changes?node=edge-05&resourceVersion=${from.revision}&intervalMs=100`, abort.signal);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('application/x-ndjson');
      const lines = new NdjsonReader(res);
      // Another node's change is not this page's business; this node's is, a burst comes as one line.
      await api.call('PATCH', '/nodes/edge-06', { body: { metadata: { labels: { x: '1' } } } });
      const patched = [];
      for (const v of ['1', '2', '3']) patched.push((await api.call('PATCH', '/nodes/edge-05', { body: { metadata: { labels: { x: v } } } })).body as Node);
      const line = await lines.next() as { type: string; resourceVersion: number };
      expect(line.type).toBe('CHANGED');
      expect(line.resourceVersion).toBeGreaterThanOrEqual(patched[0]!.metadata.resourceVersion!);
      let last = line.resourceVersion;
      while (last < patched[2]!.metadata.resourceVersion!) last = (await lines.next() as { resourceVersion: number }).resourceVersion;
      expect(last).toBe(patched[2]!.metadata.resourceVersion);
    } finally {
      abort.abort();
    }
    expect((await api.call('GET', '/fleet/changes?node=a&app=b')).status).toBe(400);
    expect((await api.call('GET', '/fleet/changes?intervalMs=5')).body).toMatchObject({ field: 'intervalMs' });
  });

  it('answers node stats: empty without a hub, 404 for an unknown node', async () => {
    expect((await api.call('GET', '/nodes/edge-00/stats')).body).toEqual({ memoryTotalBytes: null, diskTotalBytes: null, items: [], link: null });
    expect((await api.call('GET', '/nodes/nope/stats')).status).toBe(404);
    expect((await api.call('GET', '/nodes/edge-00/stats?since=yesterday')).body).toMatchObject({ field: 'since' });
  });
});
