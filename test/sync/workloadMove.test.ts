import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkloadSchema, type Workload } from '../../protocol/index.js';
import { CloudSettingsSchema } from '../../cloudcore/config.js';
import { startCloudCore, type CloudCore } from '../../cloudcore/server.js';
import { api, Fleet, markerApp, type Edge } from '../helpers/fleet.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { isAlive, waitFor } from '../helpers/wait.js';

/**
 * Issue 19 for Workloads, with real edgecore processes: a Workload whose spec.nodeName changes
 * must stop on the node it leaves, when that node learns of it by resuming after a cut link or
 * an edgecore restart. No API moves a Workload (the scheduler names them after their node), so
 * the test writes the workload and its move into the store of an in-process cloudcore, as any
 * writer could. The workload belongs to no App: the scheduler would put an App's workload back
 * on the node its name says (itself a move, which the store carries the same way), so with no
 * App and no label or join changes after it is written, no scheduler pass touches it.
 */
describe('a workload moved to another node', () => {
  const fleet = new Fleet();
  let core: CloudCore;
  let cloud: { url: string; token: string };
  const proxies: Record<string, TcpProxy> = {};
  const edges: Record<string, Edge> = {};

  const running = async (node: string, app: string) =>
    (await fleet.edgeStatus(edges[node]!)).workloads.find((w) => w.name === app && w.status?.state === 'Running');
  const absent = async (node: string, app: string) => !(await fleet.edgeStatus(edges[node]!)).workloads.some((w) => w.name === app);
  const move = async (name: string, node: string) => {
    const wl = (await core.store.get('Workload', name))!;
    await core.store.update<Workload>({ ...wl, spec: { ...wl.spec, nodeName: node } });
  };
  const startEdge = async (node: string, joinToken?: string) => {
    edges[node] = await fleet.startEdge({
      node, cloudUrl: `http://127.0.0.1:${proxies[node]!.port}`, ...(joinToken ? { joinToken } : {}),
      ...(edges[node] ? { dataDir: edges[node].dataDir } : {}),
    });
  };
  const connected = (node: string) => waitFor(`${node} connected`, async () => (await fleet.edgeStatus(edges[node]!)).link.state === 'connected', 30_000);

  beforeAll(async () => {
    const dataDir = fleet.tempDir('ef-cloud-');
    const log = pino({ level: 'warn' }, pino.destination({ dest: join(dataDir, 'cloudcore.log'), sync: false }));
    core = await startCloudCore(CloudSettingsSchema.parse({ dataDir, port: 0, offlineAfterSeconds: 3, insecurePlainHttp: true }), log);
    cloud = { url: core.url, token: core.adminToken };
    for (const node of ['edge-1', 'edge-2']) {
      proxies[node] = new TcpProxy(Number(new URL(core.url).port));
      await proxies[node].start();
      await startEdge(node, await api(cloud).token(node));
    }
    for (const node of ['edge-1', 'edge-2']) await connected(node);
    const template = markerApp('keeper', join(fleet.root, 'keeper.marker')).spec.template;
    // The scheduler removes a Workload no App wants; its pass for the edges' joins can come after
    // this create on a loaded machine (seen in CI: started, then removed 40 ms later). Written
    // again while the store lacks it and edge-1 does not run it: no pass is due after the joins'.
    const keeper = WorkloadSchema.parse({
      kind: 'Workload', metadata: { name: 'keeper.edge-1' }, spec: { nodeName: 'edge-1', app: 'keeper', generation: 1, template },
    });
    await waitFor('keeper written and running on edge-1', async () => {
      if (!(await core.store.get('Workload', 'keeper.edge-1'))) await core.store.create(keeper);
      return running('edge-1', 'keeper');
    }, 30_000);
  });
  afterAll(async () => {
    await fleet.cleanup();
    for (const proxy of Object.values(proxies)) await proxy.close();
    await core.close();
  });

  it('moved while edge-1\'s link was cut: edge-1 resumes and stops it, edge-2 runs it', async () => {
    const before = await waitFor('keeper running on edge-1', () => running('edge-1', 'keeper')).catch(async (err: Error) => {
      // What the edge says of it, for a run where it never starts (seen once in CI, not reproduced).
      const status = await fleet.edgeStatus(edges['edge-1']!).catch((e: Error) => e.message);
      throw new Error(`${err.message}\nedge-1 status: ${JSON.stringify(status)}\nedge-1 log tail:\n${edges['edge-1']!.proc.rawLines.slice(-25).join('\n')}`);
    });
    proxies['edge-1']!.cut();
    await waitFor('edge-1 notices the cut', async () => (await fleet.edgeStatus(edges['edge-1']!)).link.state !== 'connected');
    await move('keeper.edge-1', 'edge-2');
    await waitFor('keeper running on edge-2', () => running('edge-2', 'keeper'));
    proxies['edge-1']!.restore();
    await connected('edge-1');
    await waitFor('keeper gone from edge-1', () => absent('edge-1', 'keeper'), 30_000);
    await waitFor('edge-1 process stopped', () => !isAlive(before.status!.pid!));
    expect((await fleet.edgeStatus(edges['edge-1']!)).link.stats!.snapshots).toBe(1); // the first connection's, none since
  });

  it('moved back while edgecore on edge-2 was stopped: the restarted edge-2 resumes and stops it', async () => {
    const onTwo = await waitFor('keeper running on edge-2', () => running('edge-2', 'keeper'));
    await edges['edge-2']!.proc.stop();
    await move('keeper.edge-1', 'edge-1');
    await waitFor('keeper running on edge-1 again', () => running('edge-1', 'keeper'));
    await startEdge('edge-2');
    await connected('edge-2');
    await waitFor('keeper gone from edge-2', () => absent('edge-2', 'keeper'), 30_000);
    await waitFor('edge-2 process stopped', () => !isAlive(onTwo.status!.pid!));
    expect((await fleet.edgeStatus(edges['edge-2']!)).link.stats!.snapshots).toBe(0);
  });
});
