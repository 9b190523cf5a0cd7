import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeSchema, type Event, type Node, type Workload } from '../../../protocol/index.js';
import { consumeJoinToken, replaceNodeIdentity } from '../../hub/credentials.js';
import type { Store } from '../../store/store.js';

/** What the hub's join does over plain HTTP: spend the token, give the node a bearer identity. */
async function redeemJoinToken(store: Store, node: string, token: string): Promise<void> {
  await consumeJoinToken(store, node, token);
  await replaceNodeIdentity(store, node, { kind: 'bearer', lifetimeSeconds: 3600 });
}
import { LinkQuality } from '../../hub/linkQuality.js';
import { NodeStatsHistory } from '../../telemetry/nodeStatsHistory.js';
import { mergeLabelPatch } from '../rules/labelPatch.js';
import { ApiError } from '../plumbing/errors.js';
import { startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

const parseNode = (body: unknown): Node => NodeSchema.parse(body);

describe('mergeLabelPatch', () => {
  it('sets, overwrites and removes labels', () => {
    expect(mergeLabelPatch({ a: '1', b: '2' }, { b: '3', c: '4', a: null, missing: null })).toEqual({ b: '3', c: '4' });
    expect(mergeLabelPatch(undefined, { a: '1' })).toEqual({ a: '1' });
  });

  it('refuses an invalid result naming the label', () => {
    const attempt = () => mergeLabelPatch({}, { 'bad key': 'v' });
    expect(attempt).toThrow(ApiError);
    expect(attempt).toThrow('metadata.labels.bad key:');
    expect(() => mergeLabelPatch({}, { zone: 'no spaces' })).toThrow('metadata.labels.zone:');
  });
});

describe('nodes, tokens and events API', () => {
  let api: TestApi;
  beforeAll(async () => { api = await startTestApi(); });
  afterAll(async () => { await api.close(); });

  const mintToken = async (node: string) => {
    const res = await api.call('POST', '/tokens', { body: { node, ttlSeconds: 600 } });
    expect(res.status).toBe(201);
    return res.body as { token: string; node: string; expiresAt: string };
  };

  it('mints a join token and creates a Pending node for it', async () => {
    const before = Date.now();
    const minted = await mintToken('edge-1');
    expect(minted.node).toBe('edge-1');
    expect(minted.token).toMatch(/^[0-9a-f]+\.[0-9a-f]+$/);
    const expires = Date.parse(minted.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 600_000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 600_000 + 1000);
    const node = parseNode((await api.call('GET', '/nodes/edge-1')).body);
    expect(node.status.phase).toBe('Pending');
    // A second token for the same node leaves the node as it is.
    await mintToken('edge-1');
    expect(parseNode((await api.call('GET', '/nodes/edge-1')).body).metadata.resourceVersion).toBe(node.metadata.resourceVersion);
  });

  it('refuses a bad token request naming the field', async () => {
    const bad = await api.call('POST', '/tokens', { body: { node: 'Edge_1' } });
    expect(bad).toMatchObject({ status: 400, body: { field: 'node' } });
    const ttl = await api.call('POST', '/tokens', { body: { node: 'edge-9', ttlSeconds: -5 } });
    expect(ttl).toMatchObject({ status: 400, body: { field: 'ttlSeconds' } });
    expect((await api.call('GET', '/nodes/edge-9')).status).toBe(404);
  });

  it('merges label patches; null removes a label', async () => {
    await mintToken('edge-2');
    const patched = await api.call('PATCH', '/nodes/edge-2', { body: { metadata: { labels: { zone: 'a', env: 'prod' } } } });
    expect(patched.status).toBe(200);
    expect(parseNode(patched.body).metadata.labels).toEqual({ zone: 'a', env: 'prod' });
    const removed = parseNode((await api.call('PATCH', '/nodes/edge-2', { body: { metadata: { labels: { zone: null, env: 'dev' } } } })).body);
    expect(removed.metadata.labels).toEqual({ env: 'dev' });
    expect(removed.status.phase).toBe('Pending');
    const merge = await api.call('PATCH', '/nodes/edge-2', {
      rawBody: JSON.stringify({ metadata: { labels: { env: null } } }),
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(merge.status).toBe(200);
    expect(parseNode(merge.body).metadata.labels).toBeUndefined();
  });

  it('refuses an invalid label naming it, and changes nothing', async () => {
    await mintToken('edge-3');
    await api.call('PATCH', '/nodes/edge-3', { body: { metadata: { labels: { keep: 'me' } } } });
    const before = await api.store.revision();
    const res = await api.call('PATCH', '/nodes/edge-3', { body: { metadata: { labels: { ok: 'yes', 'zone': 'not valid!' } } } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: expect.stringContaining('metadata.labels.zone:'), field: 'metadata.labels.zone', code: 'EF_INVALID' });
    expect(await api.store.revision()).toBe(before);
    expect((await api.store.get('Node', 'edge-3'))?.metadata.labels).toEqual({ keep: 'me' });
  });

  it('honours resourceVersion on PATCH (stale → 409)', async () => {
    await mintToken('edge-4');
    const current = parseNode((await api.call('GET', '/nodes/edge-4')).body);
    const rv = current.metadata.resourceVersion;
    expect((await api.call('PATCH', '/nodes/edge-4', { body: { metadata: { labels: { a: '1' }, resourceVersion: rv } } })).status).toBe(200);
    const stale = await api.call('PATCH', '/nodes/edge-4', { body: { metadata: { labels: { a: '2' }, resourceVersion: rv } } });
    expect(stale.status).toBe(409);
    expect((await api.store.get('Node', 'edge-4'))?.metadata.labels).toEqual({ a: '1' });
    expect((await api.call('PATCH', '/nodes/ghost', { body: { metadata: { labels: { a: '1' } } } })).status).toBe(404);
  });

  it('filters nodes by labelSelector', async () => {
    for (const [name, zone] of [['sel-1', 'north'], ['sel-2', 'south'], ['sel-3', 'north']] as const) {
      await mintToken(name);
      await api.call('PATCH', `/nodes/${name}`, { body: { metadata: { labels: { fleet: 'sel', zone } } } });
    }
    const res = await api.call('GET', `/nodes?labelSelector=${encodeURIComponent('fleet=sel,zone notin (south)')}`);
    expect(res.status).toBe(200);
    const body = res.body as { items: Node[]; resourceVersion: number };
    expect(body.items.map((n) => n.metadata.name).sort()).toEqual(['sel-1', 'sel-3']);
    expect(body.resourceVersion).toBe(await api.store.revision());
  });

  it('deletes a node with its credential, join tokens and workloads', async () => {
    const { token } = await mintToken('edge-5');
    await redeemJoinToken(api.store, 'edge-5', token);
    const unused = await mintToken('edge-5');
    expect(await api.store.get('NodeCredential', 'edge-5')).toBeDefined();
    const template = { runtime: 'process' as const, command: '/bin/true', args: [], env: {}, restartPolicy: 'Always' as const, probes: {}, configs: [], secrets: [] };
    const workload = (node: string): Workload => ({
      kind: 'Workload', metadata: { name: `app.${node}` }, spec: { nodeName: node, app: 'app', generation: 1, template },
    });
    await api.store.create(workload('edge-5'));
    await mintToken('edge-6');
    await api.store.create(workload('edge-6'));

    const res = await api.call('DELETE', '/nodes/edge-5');
    expect(res.status).toBe(200);
    expect(parseNode(res.body).metadata.name).toBe('edge-5');
    expect(await api.store.get('Node', 'edge-5')).toBeUndefined();
    expect(await api.store.get('NodeCredential', 'edge-5')).toBeUndefined();
    expect(await api.store.get('Workload', 'app.edge-5')).toBeUndefined();
    expect(await api.store.get('JoinToken', unused.token.split('.')[0]!)).toBeUndefined();
    await expect(redeemJoinToken(api.store, 'edge-5', unused.token)).rejects.toThrow();
    expect(await api.store.get('Workload', 'app.edge-6')).toBeDefined();
    expect((await api.call('DELETE', '/nodes/edge-5')).status).toBe(404);
  });

  it('lists events newest last, by node, limited', async () => {
    const event = (i: number, node: string): Event => ({
      kind: 'Event',
      metadata: { name: `ev-${node}-${i}` },
      spec: { node, reason: 'Started', message: `event ${i}`, type: 'Normal', time: new Date().toISOString() },
    });
    for (let i = 0; i < 5; i++) {
      await api.store.create(event(i, 'ev-a'));
      await api.store.create(event(i, 'ev-b'));
    }
    const messages = async (query: string) =>
      ((await api.call('GET', `/events${query}`)).body as { items: Event[] }).items.map((e) => `${e.spec.node}:${e.spec.message}`);
    expect(await messages('?node=ev-a&limit=2')).toEqual(['ev-a:event 3', 'ev-a:event 4']);
    expect(await messages('?node=ev-b')).toHaveLength(5);
    expect((await messages('')).slice(-2)).toEqual(['ev-a:event 4', 'ev-b:event 4']);
  });
});

describe('node lastSeen while connected', () => {
  const stored = '2026-01-01T10:00:00.000Z';
  const lastFrame = Date.parse('2026-01-01T10:00:50.000Z');
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({
      links: { quality: new LinkQuality(), stats: new NodeStatsHistory(), liveLastSeen: (n) => (n === 'edge-live' ? lastFrame : undefined) },
    });
    for (const name of ['edge-live', 'edge-gone']) {
      await api.store.create(NodeSchema.parse({
        kind: 'Node', metadata: { name }, spec: {},
        status: { phase: name === 'edge-live' ? 'Ready' : 'Offline', since: stored, lastSeen: stored, epoch: 'e1', ackedRevision: 0, agent: null },
      }));
    }
  });
  afterAll(async () => { await api.close(); });

  it("shows the hub's last frame for a connected node (the stored value is written once a minute) and the stored one otherwise", async () => {
    const one = parseNode((await api.call('GET', '/nodes/edge-live')).body);
    expect(one.status.lastSeen).toBe('2026-01-01T10:00:50.000Z');
    const listed = (await api.call('GET', '/nodes')).body as { items: Node[] };
    expect(listed.items.map((n) => [n.metadata.name, n.status.lastSeen])).toEqual([
      ['edge-gone', stored], ['edge-live', '2026-01-01T10:00:50.000Z'],
    ]);
  });
});
