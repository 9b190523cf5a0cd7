import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { api, Fleet, type Cloud } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 19: admission control. cloudcore settles at most --max-settling-sessions edge links at
 * once; the rest get 503 with a Retry-After, which a real edgecore honours, linking once a slot
 * is free. Here the limit is 1 and a raw client that never says hello holds the slot.
 */
describe('admission control for edge links', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let credential: string;
  const open: WebSocket[] = [];

  beforeAll(async () => {
    cloud = await fleet.startCloud({ extra: ['--max-settling-sessions', '1'] });
    const token = await api(cloud).token('holder');
    const r = await fetch(`${cloud.url}/hub/v1/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: 'holder', token }) });
    credential = ((await r.json()) as { credential: string }).credential;
  });
  afterAll(async () => {
    for (const ws of open) ws.terminate();
    await fleet.cleanup();
  });

  /** Opens a link as `holder`; resolves with the upgrade's answer. */
  const link = () => new Promise<{ ws: WebSocket; status: number; retryAfter: string | undefined }>((resolve, reject) => {
    const ws = new WebSocket(`${cloud.url.replace('http', 'ws')}/hub/v1/connect`, { headers: { authorization: `Bearer ${credential}` } });
    open.push(ws);
    ws.once('open', () => resolve({ ws, status: 101, retryAfter: undefined }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ ws, status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      res.resume();
    });
    ws.once('error', (err) => { if (ws.readyState !== WebSocket.CLOSED) reject(err); });
  });

  it('refuses an upgrade past the limit with 503 + Retry-After; an edge waits as told and links once the slot is free', async () => {
    // A link that never says hello never settles: it holds the only slot.
    const holder = await link();
    expect(holder.status).toBe(101);
    const refused = await link();
    expect(refused.status).toBe(503);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(3);

    const edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    await waitFor('edge-1 refused with 503', async () => (await fleet.edgeStatus(edge)).link.lastError === 'cloud refused the link: HTTP 503');
    expect((await fleet.edgeStatus(edge)).link.state).not.toBe('connected');

    holder.ws.close();
    await waitFor('edge-1 linked once the slot is free', async () => (await fleet.edgeStatus(edge)).link.state === 'connected', 30_000)
      .catch(async (err: unknown) => { throw new Error(`${String(err)}; edge link: ${JSON.stringify((await fleet.edgeStatus(edge)).link)}; cloud: ${JSON.stringify(cloud.proc.lines.slice(-8))}`); });
    // Its snapshot acked, edge-1 has settled and given the slot back: the next link is admitted.
    await waitFor('a new link admitted', async () => {
      const next = await link();
      if (next.status === 101) return true;
      return undefined;
    }, 20_000, 500);
  });
});
