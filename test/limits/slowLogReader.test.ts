import { readFileSync, writeFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { Scrape } from '../metrics/promText.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 20: a log-follow reader that stops reading must not make cloudcore queue the log. A
 * workload writes ~120 MB of log in one burst while the reader's socket is paused; cloudcore
 * receives all of it from the edge, keeps at most its 1 MiB buffer per stream (its RSS stays far
 * below the burst), and the reader, once it reads again, gets a marker saying how many lines it
 * lost. Real cloudcore, real edgecore, real process workload.
 */
describe('a slow log reader', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let trigger: string;
  const LINES = 300_000;
  const LINE = 'x'.repeat(400); // 300,000 × 401 bytes ≈ 120 MB

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    trigger = join(fleet.tempDir('ef-trigger-'), 'go');
    const script = `while [ ! -f "${trigger}" ]; do sleep 0.2; done; yes "${LINE}" | head -n ${LINES}; echo burst-done; exec sleep 600`;
    const created = await api(cloud).call('POST', '/apps', { metadata: { name: 'chatty' }, spec: { template: { runtime: 'process', command: '/bin/sh', args: ['-c', script] } } });
    expect(created.status).toBe(201);
    await waitFor('chatty running', async () => fleet.runningWorkload(edge, 'chatty'));
  });
  afterAll(() => fleet.cleanup());

  const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  const hubBytesIn = async () => new Scrape(await (await fetch(`${cloud.url}/metrics`, { headers: { authorization: `Bearer ${cloud.token}` } })).text())
    .value('edgefleet_hub_received_bytes_total');

  it('keeps cloudcore memory bounded while the reader is paused and tells the reader what it missed', async () => {
    const url = new URL(`${cloud.url}/api/v1/nodes/edge-1/workloads/chatty/logs?tail=0&follow=true`);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, { headers: { authorization: `Bearer ${cloud.token}` } }, resolve);
      req.on('error', reject);
      req.end();
    });
    expect(res.statusCode).toBe(200);
    res.pause(); // the reader stops reading: the socket's receive window fills and stays full

    const rssBefore = rssBytes(cloud.proc.pid);
    const bytesBefore = await hubBytesIn();
    writeFileSync(trigger, '');
    // All of the burst crosses the link into cloudcore (frames carry a little JSON on top).
    let peakRss = rssBefore;
    await waitFor('the burst received by cloudcore', async () => {
      peakRss = Math.max(peakRss, rssBytes(cloud.proc.pid));
      return (await hubBytesIn()) - bytesBefore >= LINES * LINE.length;
    }, 60_000, 200);
    peakRss = Math.max(peakRss, rssBytes(cloud.proc.pid));
    // The burst was 120 MB; what cloudcore holds for the paused reader is at most 1 MiB, and
    // parsing the frames costs transient heap, not a copy of the burst.
    expect(peakRss - rssBefore).toBeLessThan(60 * 1024 * 1024);

    // Reading again: a bounded head of the burst, then the marker, then the live tail.
    res.setEncoding('utf8');
    let text = '';
    res.on('data', (chunk: string) => { text += chunk; });
    res.resume();
    await waitFor('the marker', () => /lines? dropped: the reader fell behind the log\]\n/.test(text), 30_000);
    res.destroy();
    const dropped = Number(/\[edgefleet: (\d+) lines? dropped/.exec(text)![1]);
    const delivered = text.split('\n').filter((l) => l === LINE || l === 'burst-done').length;
    expect(dropped).toBeGreaterThan(0);
    // Every line of the burst (and its closing line) was either delivered or counted as dropped.
    expect(delivered + dropped).toBe(LINES + 1);
    const metrics = new Scrape(await (await fetch(`${cloud.url}/metrics`, { headers: { authorization: `Bearer ${cloud.token}` } })).text());
    expect(metrics.value('edgefleet_api_log_lines_dropped_total')).toBe(dropped);
    // What reached the reader is bounded by the 1 MiB buffer plus what the sockets held.
    expect(delivered * (LINE.length + 1)).toBeLessThan(LINES * LINE.length / 4);
    expect(cloud.proc.exitCode).toBeUndefined();
    expect(edge.proc.exitCode).toBeUndefined();
  });
});
