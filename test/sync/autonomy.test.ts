import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, editEdgeDatabase, Fleet, markerApp, type Cloud, type Edge } from '../helpers/fleet.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { isAlive, sleep, waitFor } from '../helpers/wait.js';

/**
 * Issue 2, tests 3–5: partitions, kill -9 of either side, and a wiped edge database. The link
 * runs through a TCP proxy the test can cut, so the edge sees a dead cloud while both live.
 */
describe('edge autonomy and resume', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let proxy: TcpProxy;
  let edge: Edge;
  const events = async () => (await api(cloud).call<{ items: { metadata: { name: string }; spec: { reason: string; message: string; node: string } }[] }>('GET', '/events?node=edge-1&limit=1000')).body.items;
  const running = (name: string) => fleet.runningWorkload(edge, name);

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    proxy = new TcpProxy(cloud.port);
    const proxyUrl = await proxy.start();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: proxyUrl, joinToken: await api(cloud).token('edge-1') });
    await api(cloud).call('POST', '/apps', markerApp('keeper', join(fleet.root, 'keeper.marker')));
    await waitFor('keeper running', () => running('keeper'));
  });
  afterAll(async () => { await fleet.cleanup(); await proxy.close(); });

  it('partition: workloads keep running, cloud changes and edge status cross after reconnect, nothing lost or duplicated', async () => {
    const before = (await running('keeper'))!;
    proxy.cut();
    await waitFor('edge notices the cut', async () => (await fleet.edgeStatus(edge)).link.state !== 'connected');
    await waitFor('cloud marks edge-1 Offline', async () => (await api(cloud).call<{ status: { phase: string } }>('GET', '/nodes/edge-1')).body.status.phase === 'Offline');

    // Cloud side changes during the cut.
    const keeper = markerApp('keeper', join(fleet.root, 'keeper.marker'));
    keeper.spec.template.env.EF_VERSION = 'v2';
    await api(cloud).call('PUT', '/apps/keeper', keeper);
    await api(cloud).call('POST', '/apps', markerApp('latecomer', join(fleet.root, 'late.marker')));

    // Edge side status during the cut: its process dies and is restarted locally.
    await sleep(1500);
    expect(isAlive(before.status!.pid!)).toBe(true);
    process.kill(before.status!.pid!, 'SIGKILL');
    const restarted = await waitFor('local restart while offline', async () => {
      const w = await running('keeper');
      return w && w.status!.pid !== before.status!.pid ? w : undefined;
    });
    expect(restarted.generation).toBe(1); // the cloud's v2 has not arrived: the link is cut
    const offline = await fleet.edgeStatus(edge);
    expect(offline.outbox.depth).toBeGreaterThan(0);

    proxy.restore();
    await waitFor('keeper at generation 2 after reconnect', async () => (await running('keeper'))?.generation === 2, 30_000);
    await waitFor('latecomer running', () => running('latecomer'));
    await waitFor('outbox drained', async () => (await fleet.edgeStatus(edge)).outbox.depth === 0);

    const cloudView = await waitFor('cloud sees the restart', async () => {
      const r = await api(cloud).call<{ status: { nodes: { node: string; restarts: number; generation?: number; state: string }[] } }>('GET', '/apps/latecomer');
      return r.body.status.nodes.find((n) => n.state === 'Running');
    });
    expect(cloudView.node).toBe('edge-1');
    const evs = await events();
    const exitEvents = evs.filter((e) => e.spec.reason === 'Exited' && e.spec.message.startsWith('keeper'));
    expect(exitEvents.length).toBeGreaterThanOrEqual(1);
    // Every event arrived once: no two events carry the same message and time.
    const keys = evs.map((e) => `${e.spec.reason}|${e.spec.message}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('kill -9 of edgecore while offline: restarted with the cloud still down, workloads come back from the local database', async () => {
    const before = await fleet.edgeStatus(edge);
    const pids = before.workloads.map((w) => w.status!.pid!);
    proxy.cut();
    await edge.proc.kill9();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: `http://127.0.0.1:${proxy.port}`, dataDir: edge.dataDir });
    const back = await waitFor('all workloads running again, offline', async () => {
      const s = await fleet.edgeStatus(edge);
      return s.workloads.length === 2 && s.workloads.every((w) => w.status?.state === 'Running') ? s : undefined;
    });
    expect(back.link.state).not.toBe('connected');
    expect(back.workloads.map((w) => w.name).sort()).toEqual(['keeper', 'latecomer']);
    // The orphans of the killed edgecore were reaped, not left running beside the new ones.
    for (const pid of pids) await waitFor(`orphan ${pid} reaped`, () => !isAlive(pid));
    proxy.restore();
    await waitFor('reconnected', async () => (await fleet.edgeStatus(edge)).link.state === 'connected', 30_000);
  });

  it('kill -9 of cloudcore: the edge reconnects and resumes from its revision without a full resend', async () => {
    const before = await fleet.edgeStatus(edge);
    const stats = before.link.stats!;
    await cloud.proc.kill9();
    await waitFor('edge notices', async () => (await fleet.edgeStatus(edge)).link.state !== 'connected');
    cloud = await fleet.startCloud({ dataDir: cloud.dataDir, port: cloud.port });
    const after = await waitFor('edge reconnected', async () => {
      const s = await fleet.edgeStatus(edge);
      return s.link.state === 'connected' && s.link.stats!.connects > stats.connects ? s : undefined;
    }, 30_000);
    // Resume, not snapshot: no new sync frames at all, the revision unchanged.
    expect(after.link.stats!.snapshots).toBe(stats.snapshots);
    expect(after.link.stats!.syncFrames).toBe(stats.syncFrames);
    expect(after.sync.lastRevision).toBe(before.sync.lastRevision);
    // And the resumed link still carries new changes, as a delta.
    await api(cloud).call('DELETE', '/apps/latecomer');
    await waitFor('latecomer removed', async () => !(await fleet.edgeStatus(edge)).workloads.some((w) => w.name === 'latecomer'));
    const final = await fleet.edgeStatus(edge);
    expect(final.link.stats!.snapshots).toBe(stats.snapshots);
    expect(final.link.stats!.syncFrames).toBe(stats.syncFrames + 1);
  });

  it('wiped edge database: the cloud sees the new epoch and sends the full desired set', async () => {
    const before = await fleet.edgeStatus(edge);
    await edge.proc.stop();
    for (const f of ['edge.db', 'edge.db-wal', 'edge.db-shm']) rmSync(join(edge.dataDir, f), { force: true });
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: `http://127.0.0.1:${proxy.port}`, dataDir: edge.dataDir });
    const after = await waitFor('keeper back after wipe', async () => {
      const s = await fleet.edgeStatus(edge);
      return s.workloads.some((w) => w.name === 'keeper' && w.status?.state === 'Running') ? s : undefined;
    }, 30_000);
    expect(after.sync.epoch).not.toBe(before.sync.epoch);
    expect(after.link.stats!.snapshots).toBe(1);
    expect(after.workloads.map((w) => w.name)).toEqual(['keeper']);
    await waitFor('cloud logged the epoch change', () => cloud.proc.lines.some((l) => l.msg === 'sending full snapshot' && String(l.reason).includes('epoch changed')));
  });

  it('stored desired objects it cannot read (an upgrade, a hand edit): edgecore starts anyway, replays the desired state and runs them', async () => {
    await edge.proc.stop();
    // As if written by an edgecore whose schema this one no longer accepts.
    editEdgeDatabase(edge, "UPDATE desired SET json = json_set(json, '$.spec.template.runtime', 'wasm') WHERE app = 'keeper'");
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: `http://127.0.0.1:${proxy.port}`, dataDir: edge.dataDir });
    await waitFor('keeper running again', () => running('keeper'), 30_000);
    expect(edge.proc.lines.some((l) => l.msg === 'stored desired objects cannot be read; asking the cloud for the whole desired state again')).toBe(true);
    const check = new Database(join(edge.dataDir, 'edge.db'), { readonly: true });
    try {
      const stored = check.prepare<[], { json: string }>("SELECT json FROM desired WHERE app = 'keeper'").get()!;
      expect((JSON.parse(stored.json) as { spec: { template: { runtime: string } } }).spec.template.runtime).toBe('process');
    } finally {
      check.close();
    }
  });
});
