import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdUnavailable } from '../helpers/etcdCluster.js';
import { api, editEdgeDatabase, markerApp, type Cloud } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { ReplicaFleet } from './replicaFleet.js';

/**
 * The resync sweep (store etcd): a live link is sent its node's whole desired set again now and
 * then, so an edge left wrong by a watch event etcd lost (3.4 before 3.4.36 can drop a delete) is
 * put right without waiting for a reconnect. A lost event is made here the only way a real etcd
 * allows: the edge's own database is edited while it is stopped (a workload it should run is
 * gone, one it should not is there), and the resume alone does not repair it.
 */
const unavailable = etcdUnavailable();

describe.skipIf(unavailable)(`the resync sweep${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let rf: ReplicaFleet;
  let cloud: Cloud;

  beforeAll(async () => {
    rf = await ReplicaFleet.start();
    cloud = await rf.startReplica('a', { extra: ['--resync-sweep-seconds', '3'] });
  }, 120_000);

  afterAll(async () => { await rf?.stop(); }, 60_000);

  it('puts back a workload the edge lost and removes one the cloud never had, on a live link', async () => {
    let edge = await rf.startEdge('swept', cloud, [cloud]);
    expect((await api(cloud).call('POST', '/apps', markerApp('kept', `${rf.fleet.tempDir('m-')}/starts`))).status).toBe(201);
    await waitFor('kept running', () => rf.fleet.runningWorkload(edge, 'kept'), 30_000);

    await edge.proc.stop();
    // What a lost watch event would leave behind: a put never applied, and a delete never applied.
    editEdgeDatabase(edge, `INSERT INTO desired (app, name, json)
      SELECT 'stray', 'stray.swept', replace(replace(json, '"app":"kept"', '"app":"stray"'), '"name":"kept.swept"', '"name":"stray.swept"') FROM desired WHERE app = 'kept';
      DELETE FROM desired WHERE app = 'kept';`);
    edge = await rf.fleet.startEdge({ node: 'swept', cloudUrl: cloud.url, dataDir: edge.dataDir });
    await waitFor('the edge resumed', async () => (await rf.linkedTo(edge)) === cloud.url, 30_000);
    await waitFor('the sweep put kept back and took stray away', async () => {
      const names = (await rf.fleet.edgeStatus(edge)).workloads.map((w) => w.name);
      return names.includes('kept') && !names.includes('stray');
    }, 30_000);
    await waitFor('kept running again', () => rf.fleet.runningWorkload(edge, 'kept'), 30_000);
    const metrics = await fetch(`${cloud.url}/metrics`, { headers: { authorization: `Bearer ${cloud.token}` } }).then((r) => r.text());
    expect(Number(/edgefleet_hub_resync_sweeps_total (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
