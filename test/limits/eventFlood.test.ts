import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { Scrape } from '../metrics/promText.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 20, "A node cannot flood the control plane": one node sent 6,477 events/s; every event
 * was a change-log entry, the shared log compacted, every operator watch got 410 and other edges
 * were forced into snapshots. Now each node has an event budget (here 1,000/s, burst 1,000: the
 * rest is dropped, counted and warned about once) and Event entries have their own retention
 * window (here the desired-state window is the minimum, 100 entries, so the events the budget
 * lets through alone would overflow it). A raw WebSocket client with a real node credential
 * floods; a real edgecore and an operator watch look on.
 */
describe('an event flood from one node', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  const FRAMES = 20;
  const PER_FRAME = 1000;

  beforeAll(async () => {
    cloud = await fleet.startCloud({ extra: ['--max-events', '100', '--events-per-second-per-node', '1000', '--event-burst-per-node', '1000'] });
    edge = await fleet.startEdge({ node: 'edge-2', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-2') });
    await waitFor('edge-2 linked', async () => (await fleet.edgeStatus(edge)).link.state === 'connected');
  });
  afterAll(() => fleet.cleanup());

  /** Joins as `node` and links; resolves once welcomed, with a way to send frames and await acks. */
  const linkAs = async (node: string) => {
    const token = await api(cloud).token(node);
    const joined = await fetch(`${cloud.url}/hub/v1/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node, token }) });
    const { credential } = (await joined.json()) as { credential: string };
    const ws = new WebSocket(`${cloud.url.replace('http', 'ws')}/hub/v1/connect`, { headers: { authorization: `Bearer ${credential}` } });
    let ackedSeq = 0;
    const welcomed = new Promise<void>((resolve, reject) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string; seq?: number; revision?: number };
        if (frame.type === 'welcome') resolve();
        if (frame.type === 'upstreamAck') ackedSeq = frame.seq!;
        if (frame.type === 'sync') ws.send(JSON.stringify({ type: 'ack', revision: frame.revision }));
      });
      ws.once('error', reject);
    });
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    ws.send(JSON.stringify({ type: 'hello', protocolVersion: 1, node, epoch: randomBytes(8).toString('hex'), lastRevision: 0,
      agent: { version: 'flood', os: 'linux', arch: 'x64', hostname: node } }));
    await welcomed;
    return { ws, acked: () => ackedSeq };
  };

  const scrape = async () => new Scrape(await (await fetch(`${cloud.url}/metrics`, { headers: { authorization: `Bearer ${cloud.token}` } })).text());

  it('drops what is over the budget, keeps desired state resumable, and leaves other edges and watches alone', async () => {
    expect((await api(cloud).call('POST', '/apps', { metadata: { name: 'web' }, spec: { template: { runtime: 'process', command: '/bin/sleep', args: ['600'] } } })).status).toBe(201);
    await waitFor('web running on edge-2', async () => fleet.runningWorkload(edge, 'web'));
    const revisionBefore = ((await (await fetch(`${cloud.url}/api/v1/healthz`)).json()) as { revision: number }).revision;
    const snapshotsBefore = (await scrape()).value('edgefleet_hub_snapshots_total');
    // A live operator watch on apps, opened before the flood.
    const liveAbort = new AbortController();
    const live = await fetch(`${cloud.url}/api/v1/apps?watch=true&resourceVersion=${revisionBefore}`, { headers: { authorization: `Bearer ${cloud.token}` }, signal: liveAbort.signal });
    expect(live.status).toBe(200);

    const flooder = await linkAs('flooder');
    const t0 = Date.now();
    for (let f = 0; f < FRAMES; f++) {
      const entries = Array.from({ length: PER_FRAME }, (_, i) => {
        const seq = f * PER_FRAME + i + 1;
        return { seq, kind: 'event', key: `e${seq}`, body: { reason: 'Flood', message: `event ${seq}`, type: 'Warning', time: new Date().toISOString() } };
      });
      flooder.ws.send(JSON.stringify({ type: 'upstream', entries }));
    }
    // Every entry is acked, stored or not: the flooder's outbox drains, nothing is wedged.
    await waitFor('the flood acked', () => flooder.acked() === FRAMES * PER_FRAME, 60_000);
    const seconds = (Date.now() - t0) / 1000;

    const dropped = (await scrape()).value('edgefleet_hub_events_dropped_total', { node: 'flooder' });
    expect(dropped).toBeGreaterThan(0);
    const stored = FRAMES * PER_FRAME - dropped;
    expect(stored).toBeGreaterThan(100); // more than the whole desired-state window
    expect(stored).toBeLessThanOrEqual(1000 + Math.ceil(1000 * seconds) + 1000);
    const warnings = cloud.proc.lines.filter((l) => String(l.msg).startsWith('events dropped') && l.node === 'flooder');
    expect(warnings).toHaveLength(1);

    // Events are still visible (bounded by the lifecycle trim, 500 per node).
    await waitFor('events listed', async () => (await api(cloud).call<{ items: unknown[] }>('GET', '/events?node=flooder&limit=1000')).body.items.length > 0);
    // An operator watch on apps from before the flood resumes: no 410.
    const resumeAbort = new AbortController();
    const resumed = await fetch(`${cloud.url}/api/v1/apps?watch=true&resourceVersion=${revisionBefore}`, { headers: { authorization: `Bearer ${cloud.token}` }, signal: resumeAbort.signal });
    expect(resumed.status).toBe(200);
    resumeAbort.abort();
    // The live watch is still open and sees the next change.
    expect((await api(cloud).call('POST', '/apps', { metadata: { name: 'after' }, spec: { template: { runtime: 'process', command: '/bin/sleep', args: ['600'] } } })).status).toBe(201);
    const reader = live.body!.getReader();
    let text = '';
    await waitFor('the live watch sees the new app', async () => {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
      return text.includes('"name":"after"');
    }, 10_000);
    liveAbort.abort();

    // Another edge reconnecting resumes; it is not forced into a snapshot.
    await edge.proc.stop();
    edge = await fleet.startEdge({ node: 'edge-2', cloudUrl: cloud.url, dataDir: edge.dataDir });
    await waitFor('edge-2 linked again', async () => (await fleet.edgeStatus(edge)).link.state === 'connected');
    await waitFor('after running on edge-2', async () => fleet.runningWorkload(edge, 'after'));
    expect(cloud.proc.lines.filter((l) => l.msg === 'resuming edge' && l.node === 'edge-2').length).toBeGreaterThanOrEqual(1);
    expect((await scrape()).value('edgefleet_hub_snapshots_total')).toBe(snapshotsBefore + 1); // the flooder's own first link

    flooder.ws.close();
    expect(cloud.proc.exitCode).toBeUndefined();
  });
});
