import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { api, Fleet, type Cloud } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

interface Frame { type: string; mode?: string; features?: string[]; changes?: { op: string; object?: { kind: string } }[] }

/**
 * Routes add a synced kind (NodeRoute) and frame types, which an edge older than them would
 * refuse whole: the cloud sends them only to an edge whose hello lists the `routes` feature.
 */
describe('routes and edges older than them', () => {
  const fleet = new Fleet();
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    expect((await api(cloud).call('POST', '/routes', { metadata: { name: 'everywhere' }, spec: { source: { topics: ['apps/#'] }, destination: { type: 'cloud' } } })).status).toBe(201);
  });
  afterAll(() => fleet.cleanup());

  async function link(node: string, features: string[] | undefined): Promise<{ frames: Frame[]; ws: WebSocket }> {
    const token = await api(cloud).token(node);
    const joined = await fetch(`${cloud.url}/hub/v1/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node, token }) });
    const { credential } = (await joined.json()) as { credential: string };
    const ws = new WebSocket(`${cloud.url.replace('http', 'ws')}/hub/v1/connect`, { headers: { authorization: `Bearer ${credential}` } });
    const frames: Frame[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString()) as Frame));
    await new Promise<void>((res, rej) => { ws.once('open', () => res()); ws.once('error', rej); });
    ws.send(JSON.stringify({
      type: 'hello', protocolVersion: 1, node, epoch: `epoch-${node}-1`, lastRevision: 0,
      agent: { version: '0.0.9', os: 'linux', arch: 'x64', hostname: 'h' }, ...(features ? { features } : {}),
    }));
    return { frames, ws };
  }

  const routesIn = (frames: Frame[]) => frames.filter((f) => f.type === 'sync').flatMap((f) => f.changes ?? []).filter((c) => c.object?.kind === 'NodeRoute');

  it('an edge that lists `routes` gets its NodeRoute; one that does not gets none, and the cloud says it takes routes', async () => {
    // The binding exists once each node has joined; reconnecting then brings the current set.
    const first = await link('edge-new', ['routes']);
    const old = await link('edge-old', undefined);
    await waitFor('both bindings made', async () => {
      const r = (await api(cloud).call<{ status: { nodes: { node: string }[] } }>('GET', '/routes/everywhere')).body;
      return r.status.nodes.length === 2;
    });
    expect(first.frames.find((f) => f.type === 'welcome')?.features).toEqual(['routes']);
    // Sync frames are acked one at a time; ack what came so the next one flows.
    for (const peer of [first, old]) {
      await waitFor('a sync frame', () => peer.frames.some((f) => f.type === 'sync'));
    }
    await waitFor('the NodeRoute at the new edge', () => {
      for (const f of first.frames.filter((x) => x.type === 'sync')) first.ws.send(JSON.stringify({ type: 'ack', revision: (f as unknown as { revision: number }).revision }));
      return routesIn(first.frames).length > 0;
    });
    // Whatever reached the old edge (snapshot, later deltas) never carried a NodeRoute.
    for (const f of old.frames.filter((x) => x.type === 'sync')) old.ws.send(JSON.stringify({ type: 'ack', revision: (f as unknown as { revision: number }).revision }));
    expect(routesIn(old.frames)).toEqual([]);
    expect(old.frames.some((f) => f.type === 'error')).toBe(false);
    first.ws.close();
    old.ws.close();
  });
});
