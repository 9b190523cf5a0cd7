import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { api, editEdgeDatabase, Fleet, markerApp, type Cloud } from '../helpers/fleet.js';
import { sleep, waitFor } from '../helpers/wait.js';

interface Frame { type: string; code?: string; field?: string; seq?: number }
interface WorkloadList { items: { metadata: { name: string }; status?: { state: string; restarts: number } }[] }

/**
 * docs/sync.md, Version skew, with the real cloudcore and edgecore: a newer edge's frames carry
 * fields this cloud does not know and are applied without them; an edgecore of another version
 * than the one that kept its database asks for everything again, and its workloads keep running.
 */
describe('version skew between cloud and edge', () => {
  const fleet = new Fleet();
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await fleet.startCloud();
  });
  afterAll(() => fleet.cleanup());

  it('a newer edge: its unknown fields are dropped and logged once, the rest applied; a bad value beside them is still refused', async () => {
    const token = await api(cloud).token('edge-new');
    const joined = await fetch(`${cloud.url}/hub/v1/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: 'edge-new', token }) });
    const { credential } = (await joined.json()) as { credential: string };
    await api(cloud).call('POST', '/apps', markerApp('web', '/dev/null', { matchLabels: { gen: 'new' } }));
    await api(cloud).call('PATCH', '/nodes/edge-new', { metadata: { labels: { gen: 'new' } } });

    const ws = new WebSocket(`${cloud.url.replace('http', 'ws')}/hub/v1/connect`, { headers: { authorization: `Bearer ${credential}` } });
    const frames: Frame[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString()) as Frame));
    await new Promise<void>((res, rej) => { ws.once('open', () => res()); ws.once('error', rej); });
    try {
      ws.send(JSON.stringify({
        type: 'hello', protocolVersion: 1, node: 'edge-new', epoch: 'epoch-newer-1', lastRevision: 0,
        agent: { version: '9.9.9', os: 'linux', arch: 'x64', hostname: 'h', kernel: '6.1' }, compression: ['zstd'],
      }));
      await waitFor('welcome and snapshot', () => frames.some((f) => f.type === 'sync'));
      // A node is bound to apps once it has first connected (a never-joined node gets nothing).
      await waitFor('web bound to edge-new', async () => (await api(cloud).call<WorkloadList>('GET', '/workloads?node=edge-new')).body.items.length === 1);
      const status = { state: 'Running', restarts: 2, generation: 1, observedAt: new Date().toISOString(), cpuMillis: 12 };
      ws.send(JSON.stringify({ type: 'upstream', entries: [{ seq: 1, kind: 'workloadStatus', key: 'web', priority: 'high', body: { app: 'web', status } }] }));
      await waitFor('upstreamAck 1', () => frames.some((f) => f.type === 'upstreamAck' && f.seq === 1));
      const stored = await waitFor('status in the cloud', async () => (await api(cloud).call<WorkloadList>('GET', '/workloads?node=edge-new')).body.items[0]?.status);
      expect(stored).toMatchObject({ state: 'Running', restarts: 2 });
      expect(stored).not.toHaveProperty('cpuMillis');
      expect((await api(cloud).call<{ status: { agent: unknown } }>('GET', '/nodes/edge-new')).body.status.agent).toEqual({ version: '9.9.9', os: 'linux', arch: 'x64', hostname: 'h' });

      // Logged once per field, naming the fields with array positions as *.
      ws.send(JSON.stringify({ type: 'upstream', entries: [{ seq: 2, kind: 'workloadStatus', key: 'web', priority: 'low', body: { app: 'web', status: { ...status, restarts: 3 } } }] }));
      await waitFor('upstreamAck 2', () => frames.some((f) => f.type === 'upstreamAck' && f.seq === 2));
      const logged = cloud.proc.lines.filter((l) => l.msg?.startsWith('ignoring frame fields this cloudcore does not know'));
      expect(logged.map((l) => l.fields)).toEqual([
        expect.arrayContaining(['agent.kernel', 'compression']),
        expect.arrayContaining(['entries.*.priority', 'entries.*.body.status.cpuMillis']),
      ]);

      ws.send(JSON.stringify({ type: 'upstream', entries: [{ seq: 3, kind: 'workloadStatus', key: 'web', priority: 'x', body: { app: 'web', status: { ...status, state: 'Exploded' } } }] }));
      const refused = await waitFor('bad value refused', () => frames.find((f) => f.type === 'error'));
      expect(refused).toMatchObject({ code: 'bad_frame', field: 'entries.0.body.status.state' });
    } finally {
      ws.close();
    }
  });

  it('an edgecore of another version than its database resyncs everything once, and its workload is not started again for it', async () => {
    const token = await api(cloud).token('edge-1');
    let edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: token });
    const marker = join(fleet.root, 'keeper.marker');
    await api(cloud).call('POST', '/apps', markerApp('keeper', marker, { matchLabels: { gen: 'one' } }));
    await api(cloud).call('PATCH', '/nodes/edge-1', { metadata: { labels: { gen: 'one' } } });
    const running = async () => (await fleet.edgeStatus(edge)).workloads.find((w) => w.name === 'keeper' && w.status?.state === 'Running');
    await waitFor('keeper running', running);
    expect(edge.proc.lines.some((l) => l.msg?.startsWith('edgecore version changed'))).toBe(false);

    await edge.proc.stop();
    // As the database looks after an older edgecore kept it.
    editEdgeDatabase(edge, "UPDATE kv SET value = '0.0.9' WHERE key = 'agentVersion'");
    const snapshotsBefore = cloud.proc.lines.filter((l) => l.node === 'edge-1' && (l.msg === 'sending full snapshot' || l.fromRevision === 0)).length;
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, dataDir: edge.dataDir });
    const changed = await edge.proc.waitForLog('edgecore version changed: the cloud will send the whole desired state again');
    expect(changed.from).toBe('0.0.9');
    // The hello said revision 0: the cloud sent everything again (a snapshot or a replay from the start).
    await waitFor('the cloud caught the edge up from the start', () =>
      cloud.proc.lines.filter((l) => l.node === 'edge-1' && (l.msg === 'sending full snapshot' || l.fromRevision === 0)).length > snapshotsBefore);
    await waitFor('synced again', async () => (await fleet.edgeStatus(edge)).sync.lastRevision > 0);
    // Started twice: once at first, once when edgecore restarted (process workloads restart with
    // it, docs/architecture.md); the objects sent again changed nothing, so no third start.
    await sleep(1500);
    expect((await running())?.generation).toBe(1);
    expect(readFileSync(marker, 'utf8').trim().split('\n')).toEqual(['started v1', 'started v1']);

    // Once: the next start of the same version resumes.
    await edge.proc.stop();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, dataDir: edge.dataDir });
    await waitFor('keeper running after a plain restart', running);
    expect(edge.proc.lines.some((l) => l.msg?.startsWith('edgecore version changed'))).toBe(false);
  });
});
