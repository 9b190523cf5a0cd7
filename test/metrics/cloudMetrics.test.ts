import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, markerApp, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { conventionProblems, Scrape } from './promText.js';

/**
 * cloudcore `/metrics` against a real cloudcore with a real edgecore joined to it: values are
 * read with a real Prometheus text parser and must move with what the fleet does.
 */
describe('cloudcore /metrics', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let readonlyToken: string;

  const scrape = async (token = readonlyToken) => {
    const res = await fetch(`${cloud.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return new Scrape(await res.text());
  };

  beforeAll(async () => {
    // A long offline window: the ack test pauses the edge process for a few seconds.
    cloud = await fleet.startCloud({ extra: ['--offline-after-seconds', '60'] });
    readonlyToken = readFileSync(join(cloud.dataDir, 'readonly.token'), 'utf8').trim();
  });
  afterAll(async () => {
    if (edge && edge.proc.exitCode === undefined) { try { process.kill(edge.proc.pid, 'SIGCONT'); } catch { /* gone */ } }
    await fleet.cleanup();
  });

  it('needs an operator token; the readonly one is enough', async () => {
    expect((await fetch(`${cloud.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${cloud.url}/metrics`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const first = await scrape();
    expect(conventionProblems(first, 'edgefleet_')).toEqual([]);
    expect(first.value('edgefleet_hub_sessions')).toBe(0);
    expect(first.family('edgefleet_rollouts').type).toBe('GAUGE');
    expect(first.value('edgefleet_cloudcore_build_info', { version: '0.1.0' })).toBe(1);
    // prom-client's process metrics, from this registry.
    expect(first.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    await scrape(cloud.token); // admin works too
  });

  it('sessions, frames by type and store revision move when a real edge joins and runs an app', async () => {
    const before = await scrape();
    edge = await fleet.startEdge({ node: 'edge-m', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-m') });
    await waitFor('session counted', async () => (await scrape()).value('edgefleet_hub_sessions') === 1);
    expect((await api(cloud).call('POST', '/apps', markerApp('metered', join(fleet.root, 'metered.marker')))).status).toBe(201);
    await waitFor('metered running', async () => (await fleet.edgeStatus(edge)).workloads.find((w) => w.name === 'metered')?.status?.state === 'Running');

    const after = await waitFor('pings and acks counted', async () => {
      const s = await scrape();
      return s.value('edgefleet_hub_frames_received_total', { type: 'ping' }) >= 2 && s.value('edgefleet_hub_frames_received_total', { type: 'upstream' }) >= 1 ? s : undefined;
    });
    expect(after.value('edgefleet_hub_frames_received_total', { type: 'hello' })).toBe(1);
    expect(after.value('edgefleet_hub_frames_received_total', { type: 'ack' })).toBeGreaterThanOrEqual(1);
    expect(after.value('edgefleet_hub_frames_sent_total', { type: 'welcome' })).toBe(1);
    expect(after.value('edgefleet_hub_frames_sent_total', { type: 'sync' })).toBeGreaterThanOrEqual(2); // snapshot + the app's workload
    expect(after.value('edgefleet_hub_frames_sent_total', { type: 'upstreamAck' })).toBeGreaterThanOrEqual(1);
    expect(after.value('edgefleet_hub_snapshots_total')).toBe(1);
    expect(after.value('edgefleet_hub_received_bytes_total')).toBeGreaterThan(before.value('edgefleet_hub_received_bytes_total'));
    const health = (await (await fetch(`${cloud.url}/api/v1/healthz`)).json()) as { revision: number };
    expect(after.value('edgefleet_store_revision')).toBeGreaterThan(before.value('edgefleet_store_revision'));
    expect(after.value('edgefleet_store_revision')).toBeLessThanOrEqual(health.revision);

    // The POST /apps above was timed under its route pattern.
    const latency = after.histogram('edgefleet_api_request_duration_seconds');
    const posted = latency.find((m) => m.labels.route === '/api/v1/apps' && m.labels.method === 'POST' && m.labels.status === '201');
    expect(posted?.count).toBe(1);
    expect(posted?.buckets['+Inf']).toBe(1);
    expect(posted?.sum).toBeGreaterThan(0);
    // Unknown paths share one label value, so a scanner cannot blow up the series count.
    await fetch(`${cloud.url}/no/such/${Math.random()}`);
    const later = await scrape();
    expect(later.histogram('edgefleet_api_request_duration_seconds').some((m) => m.labels.route === '<unmatched>' && m.labels.status === '404')).toBe(true);
  });

  it('acks pending: a paused edge leaves a sync frame unacked and changes queued behind it, until it resumes', async () => {
    await waitFor('nothing unacked at rest', async () => (await scrape()).value('edgefleet_hub_nodes_awaiting_ack') === 0);
    process.kill(edge.proc.pid, 'SIGSTOP');
    try {
      // Two apps, written one after the other: the first goes out as a sync frame nobody acks,
      // the second waits behind it.
      expect((await api(cloud).call('POST', '/apps', markerApp('queued-1', join(fleet.root, 'q1.marker')))).status).toBe(201);
      await waitFor('a frame in flight', async () => (await scrape()).value('edgefleet_hub_nodes_awaiting_ack') === 1);
      expect((await api(cloud).call('POST', '/apps', markerApp('queued-2', join(fleet.root, 'q2.marker')))).status).toBe(201);
      const stuck = await waitFor('an object queued', async () => {
        const s = await scrape();
        return s.value('edgefleet_hub_pending_objects') >= 1 ? s : undefined;
      });
      expect(stuck.value('edgefleet_hub_nodes_awaiting_ack')).toBe(1);
    } finally {
      process.kill(edge.proc.pid, 'SIGCONT');
    }
    await waitFor('all acked after resume', async () => {
      const s = await scrape();
      return s.value('edgefleet_hub_nodes_awaiting_ack') === 0 && s.value('edgefleet_hub_pending_objects') === 0;
    });
  });

  it('sessions drop to 0 when the edge goes away', async () => {
    await edge.proc.stop();
    await waitFor('session gone', async () => (await scrape()).value('edgefleet_hub_sessions') === 0);
  });
});
