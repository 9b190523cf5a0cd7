import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, markerApp, type Cloud, type Edge } from '../helpers/fleet.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 19: a silent partition (packets dropped, no FIN/RST). The proxy stops moving bytes
 * without closing anything. The edge must notice from its unanswered heartbeat (the pong
 * deadline, not only 2.5 silent heartbeats), the cloud from the heartbeats it stops getting, and
 * once bytes move again the edge is back with what changed meanwhile.
 */
describe('silent partition', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let proxy: TcpProxy;
  let edge: Edge;
  const running = (name: string) => fleet.runningWorkload(edge, name);

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    proxy = new TcpProxy(cloud.port);
    const proxyUrl = await proxy.start();
    // Heartbeats every 3 s, answered within 1 s: the pong deadline ends a silent link well before 2.5 heartbeats.
    edge = await fleet.startEdge({
      node: 'edge-1', cloudUrl: proxyUrl, joinToken: await api(cloud).token('edge-1'),
      extra: ['--heartbeat-seconds', '3', '--pong-timeout-seconds', '1'],
    });
    await api(cloud).call('POST', '/apps', markerApp('keeper', join(fleet.root, 'keeper.marker')));
    await waitFor('keeper running', () => running('keeper'));
  });
  afterAll(async () => { await fleet.cleanup(); await proxy.close(); });

  it('the edge notices by its pong deadline, the cloud by missing heartbeats; after it, the change made meanwhile arrives', async () => {
    proxy.stall();
    const noticed = await waitFor('edge notices the silent link', async () => {
      const link = (await fleet.edgeStatus(edge)).link;
      return link.state !== 'connected' ? link : undefined;
    }, 20_000, 50);
    expect(noticed.lastError).toBe('no answer to a heartbeat within 1 s');
    await waitFor('cloud marks edge-1 Offline', async () => (await api(cloud).call<{ status: { phase: string } }>('GET', '/nodes/edge-1')).body.status.phase === 'Offline');

    // A change while no byte crosses: it reaches the edge once they do again.
    await api(cloud).call('POST', '/apps', markerApp('latecomer', join(fleet.root, 'late.marker')));
    proxy.restore();
    await waitFor('edge linked again', async () => (await fleet.edgeStatus(edge)).link.state === 'connected', 30_000);
    await waitFor('latecomer running', () => running('latecomer'), 30_000);
    expect(await running('keeper')).toBeDefined();
    await waitFor('cloud sees edge-1 Ready', async () => (await api(cloud).call<{ status: { phase: string } }>('GET', '/nodes/edge-1')).body.status.phase === 'Ready');
  });
});
