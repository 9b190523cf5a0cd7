import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/** Issue 2, test 1: join with node-bound, single-use, expiring tokens. Real processes. */
describe('join', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  beforeAll(async () => { cloud = await fleet.startCloud(); });
  afterAll(() => fleet.cleanup());

  const join = (node: string, token: string) => fetch(`${cloud.url}/hub/v1/join`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node, token }),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string; credential?: string } }));

  it('a node joins with its token and becomes Ready', async () => {
    const token = await api(cloud).token('edge-1');
    const edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: token });
    await waitFor('edge-1 connected', async () => (await fleet.edgeStatus(edge)).link.state === 'connected');
    const node = await api(cloud).call<{ status: { phase: string; agent: { version: string } | null } }>('GET', '/nodes/edge-1');
    expect(node.body.status.phase).toBe('Ready');
    expect(node.body.status.agent?.version).toBe('0.1.0');
  });

  it('a token for edge-1 cannot be used by edge-2', async () => {
    const token = await api(cloud).token('edge-1b');
    const r = await join('edge-2', token);
    expect(r.status).toBe(403);
    expect(r.body.error).toContain('bound to node "edge-1b"');
    // The refused attempt did not consume it: the right node can still join.
    expect((await join('edge-1b', token)).status).toBe(200);
  });

  it('a reused token is refused', async () => {
    const token = await api(cloud).token('edge-3');
    expect((await join('edge-3', token)).status).toBe(200);
    const again = await join('edge-3', token);
    expect(again.status).toBe(401);
    expect(again.body.error).toContain('already used');
  });

  it('an expired token is refused', async () => {
    const token = await api(cloud).token('edge-4', 1);
    await new Promise((r) => setTimeout(r, 1500));
    const r = await join('edge-4', token);
    expect(r.status).toBe(401);
    expect(r.body.error).toContain('expired');
  });

  it('a forged token is refused, and edgecore reports the refusal on its status page', async () => {
    expect((await join('edge-5', 'abcdef012345.00000000000000000000000000000000')).status).toBe(401);
    const edge = await fleet.startEdge({ node: 'edge-5', cloudUrl: cloud.url, joinToken: 'abcdef012345.0000' });
    const status = await waitFor('join failure shown', async () => {
      const s = await fleet.edgeStatus(edge);
      return s.link.state === 'join-failed' ? s : undefined;
    });
    expect(status.link.lastError).toContain('join token is not valid');
  });

  it('joining again with a new token ends the link of the old identity, whose credential no longer works', async () => {
    const first = await join('edge-9', await api(cloud).token('edge-9'));
    const connect = (credential: string) => new WebSocket(`${cloud.url.replace('http', 'ws')}/hub/v1/connect`, { headers: { authorization: `Bearer ${credential}` } });
    const old = connect(first.body.credential!);
    const closed = new Promise<{ code: number; reason: string }>((resolve) => old.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise<void>((resolve, reject) => { old.once('open', () => resolve()); old.once('error', reject); });
    old.send(JSON.stringify({ type: 'hello', protocolVersion: 1, node: 'edge-9', epoch: 'epoch-edge-9', lastRevision: 0, agent: { version: 't', os: 'linux', arch: 'x64', hostname: 'h' } }));

    // Before, the old session went on answering pings after the node had been joined anew.
    expect((await join('edge-9', await api(cloud).token('edge-9'))).status).toBe(200);
    expect(await closed).toEqual({ code: 4004, reason: 'the node joined again with a new token: the identity of this link is no longer valid' });
    const again = connect(first.body.credential!);
    const refused = await new Promise<number>((resolve) => { again.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); }); again.on('error', () => undefined); });
    expect(refused).toBe(401);
  });

  it('the WebSocket refuses a connection without a valid credential', async () => {
    const refusedWith = (headers: Record<string, string>) => new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${cloud.url.replace('http', 'ws')}/hub/v1/connect`, { headers });
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); });
      ws.on('open', () => { ws.close(); reject(new Error('connection was accepted')); });
      ws.on('error', () => undefined);
    });
    expect(await refusedWith({})).toBe(401);
    expect(await refusedWith({ authorization: 'Bearer edge-1.bogus' })).toBe(401);
  });
});
