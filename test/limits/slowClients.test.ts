import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud } from '../helpers/fleet.js';
import { Scrape } from '../metrics/promText.js';
import { openSlowClient, UNFINISHED_JOIN, type SlowClient } from '../helpers/slowClients.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 20, "Nothing exhausts a daemon before login" (cloudcore): 1,100 unauthenticated join
 * requests whose body never arrives, from four loopback addresses, used to hold cloudcore open
 * for 95 s+ and made it unreachable. Now each address may hold at most 256 connections (the rest
 * are closed at accept, one warning per address), the held ones are answered 408 and closed at
 * the request timeout, and meanwhile /healthz and a real edge's join and link still work.
 */
describe('cloudcore under slow unauthenticated clients', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  const clients: SlowClient[] = [];
  const ATTACKERS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
  const PER_ADDRESS = 275; // 4 × 275 = 1,100; the default cap is 256 per address
  const REQUEST_TIMEOUT_S = 15;

  beforeAll(async () => {
    // A request timeout a little longer than the default 10 s: the window must outlast starting
    // a real edgecore on a busy machine, which is what proves cloudcore stayed reachable.
    cloud = await fleet.startCloud({ extra: ['--request-timeout-seconds', String(REQUEST_TIMEOUT_S)] });
  });
  afterAll(async () => {
    for (const c of clients) c.socket.destroy();
    await fleet.cleanup();
  });

  it('caps connections per address, still serves /healthz and a real edge, and closes every slow body at the request timeout', async () => {
    const token = await api(cloud).token('edge-1');
    const t0 = Date.now();
    for (const address of ATTACKERS) {
      for (let i = 0; i < PER_ADDRESS; i++) clients.push(openSlowClient(cloud.port, address, UNFINISHED_JOIN));
    }
    // Over-cap connections are closed at once; the rest stay open.
    await waitFor('every slow client connected or refused', () => clients.every((c) => c.connectedAt !== undefined || c.closedAt !== undefined), 20_000);
    await waitFor('over-cap connections closed', () => clients.filter((c) => c.closedAt !== undefined).length >= 4 * (PER_ADDRESS - 256), 10_000);

    const health = await fetch(`${cloud.url}/api/v1/healthz`);
    expect(health.status).toBe(200);
    const edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: token });
    await waitFor('edge-1 linked', async () => (await fleet.edgeStatus(edge)).link.state === 'connected', 20_000);
    // The edge got in while the attack was still being held (not after it ended by itself).
    const heldWhileEdgeLinked = clients.filter((c) => c.closedAt === undefined).length;
    expect(heldWhileEdgeLinked).toBe(4 * 256);
    for (const address of ATTACKERS) {
      const closedEarly = clients.filter((c) => c.localAddress === address && c.closedAt !== undefined);
      expect(closedEarly).toHaveLength(PER_ADDRESS - 256);
      expect(closedEarly.every((c) => c.received === '')).toBe(true);
    }

    // Every held body is answered 408 and its connection closed, within seconds of the timeout.
    await waitFor('every slow client closed', () => clients.every((c) => c.closedAt !== undefined), (REQUEST_TIMEOUT_S + 15) * 1000);
    const held = clients.filter((c) => c.received !== '');
    expect(held).toHaveLength(4 * 256);
    expect(held.every((c) => c.received.startsWith('HTTP/1.1 408'))).toBe(true);
    const latest = Math.max(...held.map((c) => c.closedAt! - c.connectedAt!));
    expect(latest).toBeLessThan((REQUEST_TIMEOUT_S + 5) * 1000);
    expect(Date.now() - t0).toBeLessThan(60_000);

    // One warning per address, not one per refused connection.
    const warnings = cloud.proc.lines.filter((l) => String(l.msg).startsWith('connection refused: too many open connections'));
    expect(warnings.map((w) => w.remote).sort()).toEqual(ATTACKERS);
    const metrics = new Scrape(await (await fetch(`${cloud.url}/metrics`, { headers: { authorization: `Bearer ${cloud.token}` } })).text());
    expect(metrics.value('edgefleet_cloud_connections_refused_total', { what: 'connection' })).toBe(4 * (PER_ADDRESS - 256));
    // Nothing the attack sent was stored; cloudcore and the edge are still up and linked.
    const nodes = await api(cloud).call<{ items: { metadata: { name: string } }[] }>('GET', '/nodes');
    expect(nodes.body.items.map((n) => n.metadata.name)).toEqual(['edge-1']);
    expect(cloud.proc.exitCode).toBeUndefined();
    expect((await fleet.edgeStatus(edge)).link.state).toBe('connected');
  });

  it('closes a connection that never sends its headers', async () => {
    const silent = openSlowClient(cloud.port, '127.0.0.6', '');
    const half = openSlowClient(cloud.port, '127.0.0.6', 'GET /api/v1/healthz HTTP/1.1\r\nHost: cloud\r\n');
    clients.push(silent, half);
    // headersTimeoutSeconds defaults to 5.
    await waitFor('both closed', () => silent.closedAt !== undefined && half.closedAt !== undefined, 15_000);
    expect(half.received).toMatch(/^HTTP\/1.1 408/);
  });
});

describe('cloudcore with its default timeouts', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  const clients: SlowClient[] = [];
  beforeAll(async () => { cloud = await fleet.startCloud(); });
  afterAll(async () => {
    for (const c of clients) c.socket.destroy();
    await fleet.cleanup();
  });

  it('answers an unfinished join body 408 and closes it within seconds (10 s default)', async () => {
    const slow = openSlowClient(cloud.port, '127.0.0.7', UNFINISHED_JOIN);
    clients.push(slow);
    await waitFor('the slow join closed', () => slow.closedAt !== undefined, 20_000);
    expect(slow.received).toMatch(/^HTTP\/1.1 408/);
    expect(slow.closedAt! - slow.connectedAt!).toBeGreaterThanOrEqual(9_000);
    expect(slow.closedAt! - slow.connectedAt!).toBeLessThan(15_000);
    expect(cloud.proc.exitCode).toBeUndefined();
  });
});
