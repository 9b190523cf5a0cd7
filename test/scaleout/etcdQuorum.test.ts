import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdUnavailable } from '../helpers/etcdCluster.js';
import { api, markerApp, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { ReplicaFleet } from './replicaFleet.js';

/**
 * Issue 23, test 4: etcd members killed under two replicas. One of three: nothing stops. Two of
 * three: writes answer 503 naming etcd, edges keep running what they have, and once the members
 * are back everything resumes with nothing lost (a restart an edge saw meanwhile reaches the cloud).
 */
const unavailable = etcdUnavailable();

describe.skipIf(unavailable)(`etcd members lost under the replicas${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let rf: ReplicaFleet;
  let a: Cloud;
  let b: Cloud;
  let edgeA: Edge;
  let edgeB: Edge;

  beforeAll(async () => {
    rf = await ReplicaFleet.start();
    a = await rf.startReplica('a', { extra: ['--etcd-timeout-seconds', '2'] });
    b = await rf.startReplica('b', { extra: ['--etcd-timeout-seconds', '2'] });
    edgeA = await rf.startEdge('quorum-a', a, [a, b]);
    edgeB = await rf.startEdge('quorum-b', b, [b, a]);
  }, 120_000);

  afterAll(async () => { await rf?.stop(); }, 60_000);

  const running = (edge: Edge) => async () => {
    const status = await rf.fleet.edgeStatus(edge);
    const w = status.workloads.find((x) => x.name === 'steady');
    return w?.status?.state === 'Running' && w.generation >= 1 ? w : undefined;
  };

  /** Changes the app at `via` and waits until both edges run that generation. */
  async function rollTo(via: Cloud, version: string, generation: number): Promise<void> {
    const app = await api(via).call<{ spec: ReturnType<typeof markerApp>['spec'] }>('GET', '/apps/steady');
    const spec = { ...app.body.spec, template: { ...app.body.spec.template, env: { EF_VERSION: version } } };
    expect((await api(via).call('PUT', '/apps/steady', { metadata: { name: 'steady' }, spec })).status).toBe(200);
    for (const edge of [edgeA, edgeB]) {
      await waitFor(`${version} on ${edge.node}`, async () => {
        const w = (await rf.fleet.edgeStatus(edge)).workloads.find((x) => x.name === 'steady');
        return w?.generation === generation && w.status?.state === 'Running';
      }, 60_000);
    }
  }

  it('one member of three killed: writes, sync and links go on', async () => {
    const marker = `${rf.fleet.tempDir('marker-')}/starts`;
    expect((await api(a).call('POST', '/apps', markerApp('steady', marker))).status).toBe(201);
    await waitFor('steady on both edges', async () => (await running(edgeA)()) && (await running(edgeB)()), 30_000);

    await rf.etcd.kill(0);
    const put = await api(b).call('POST', '/configs', { metadata: { name: 'one-down' }, data: { k: 'v' } });
    expect(put.status).toBe(201);
    await rollTo(b, 'v2', 2);
  }, 90_000);

  it('two of three killed: writes answer 503 naming etcd, edges keep running; members back: everything resumes, nothing lost', async () => {
    const before = (await rf.fleet.edgeStatus(edgeA)).workloads.find((x) => x.name === 'steady')!;
    const pid = before.status!.pid!;
    await rf.etcd.kill(1);

    const refused = await api(a).call<{ error: string }>('POST', '/configs', { metadata: { name: 'no-quorum' }, data: { k: 'v' } });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatch(/etcd/);

    // The edge's workload keeps running, and a restart it sees now is reported once etcd is back.
    process.kill(pid, 'SIGKILL');
    await waitFor('the edge restarts its workload by itself', async () => {
      const w = (await rf.fleet.edgeStatus(edgeA)).workloads.find((x) => x.name === 'steady');
      return w?.status?.state === 'Running' && w.status.pid !== pid ? w : undefined;
    }, 30_000);
    const stillRefused = await api(b).call('POST', '/configs', { metadata: { name: 'no-quorum' }, data: { k: 'v' } });
    expect(stillRefused.status).toBe(503);

    await rf.etcd.restart(0);
    await rf.etcd.restart(1);
    await rf.etcd.waitHealthy();
    await waitFor('writes work again', async () => (await api(a).call('POST', '/configs', { metadata: { name: 'quorum-back' }, data: { k: 'v' } })).status === 201, 30_000);
    // Nothing lost: the config written with one member down is there, at either replica (B may
    // answer 503 for a few seconds more: etcd3's circuit breaker keeps a returned member shut ~5 s).
    await waitFor('B reads again, and finds what was written with one member down', async () => (await api(b).call('GET', '/configs/one-down')).status === 200, 30_000);
    await waitFor('the restart during the outage is in the cloud', async () => {
      const list = await api(b).call<{ items: { spec: { app: string }; status?: { restarts: number; state: string } }[] }>('GET', '/workloads?node=quorum-a');
      const w = list.body.items.find((x) => x.spec.app === 'steady');
      return (w?.status?.restarts ?? 0) >= 1 && w?.status?.state === 'Running';
    }, 60_000);
    // And desired state flows again.
    await rollTo(a, 'v3', 3);
  }, 180_000);
});
