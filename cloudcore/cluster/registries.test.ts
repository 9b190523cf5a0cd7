import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, etcdUnavailable } from '../../test/helpers/etcdCluster.js';
import { TcpProxy } from '../../test/helpers/tcpProxy.js';
import { waitFor } from '../../test/helpers/wait.js';
import type { WriteGuard } from '../store/store.js';
import { clusterKey, createRevisionIs, getKey, prefixEnd, putOp, txn } from './etcdCalls.js';
import { ReplicaLease } from './replicaLease.js';
import { ReplicaRegistry } from './replicaRegistry.js';
import { SessionRegistry } from './sessionRegistry.js';

const skipReason = etcdUnavailable();

/** One replica's cluster side: its own etcd client, lease and registries. */
interface Replica {
  id: string;
  client: Etcd3;
  lease: ReplicaLease;
  replicas: ReplicaRegistry;
  sessions: SessionRegistry;
  takenOver: Array<[string, string]>;
  warnings: string[];
}

describe.skipIf(skipReason)(`replica and session registries on a real 3-member etcd${skipReason ? ` (SKIPPED: ${skipReason})` : ''}`, () => {
  let cluster: EtcdCluster;
  const open: Replica[] = [];
  let testNo = 0;
  let prefix = '';

  beforeAll(async () => { cluster = await EtcdCluster.start(); });
  afterAll(async () => { await cluster?.stop(); });
  afterEach(async () => {
    for (const r of open.splice(0)) {
      r.sessions.close();
      await r.replicas.close();
      await r.lease.close();
      r.client.close();
    }
  });

  async function replica(id: string, ttlSeconds = 10, hosts: string[] = cluster.endpointList, callMs?: number): Promise<Replica> {
    const client = new Etcd3({ hosts });
    const warnings: string[] = [];
    const onWarning = (m: string) => warnings.push(m);
    const lease = await ReplicaLease.start(client, { ttlSeconds, retryMs: 100 });
    lease.on('warning', onWarning);
    lease.on('lost', (reason) => onWarning(`lease lost: ${reason}`));
    const replicas = await ReplicaRegistry.start(client, prefix, lease, {
      id, url: `https://127.0.0.1:${9000 + open.length}`, version: '0.1.0', startedAt: new Date().toISOString(),
    }, { onWarning });
    const sessions = await SessionRegistry.start(client, prefix, lease, id, { onWarning, ...(callMs !== undefined ? { callMs } : {}) });
    const r: Replica = { id, client, lease, replicas, sessions, takenOver: [], warnings };
    sessions.onTakenOver((node, owner) => r.takenOver.push([node, owner]));
    open.push(r);
    return r;
  }

  function nextPrefix(): string {
    prefix = `/ef-test-registries-${++testNo}/`;
    return prefix;
  }

  async function guardHolds(client: Etcd3, guard: WriteGuard): Promise<boolean> {
    const res = await txn(client, [createRevisionIs(clusterKey(prefix, guard.key), guard.createRevision)], [putOp(clusterKey(prefix, 'probe'), 'x')]);
    return res.succeeded;
  }

  it('lists live replicas from every replica, and drops one that closes', async () => {
    nextPrefix();
    const [a, b] = [await replica('a'), await replica('b')];
    await waitFor('both see both', () => [a, b].every((r) => r.replicas.list().length === 2));
    expect(a.replicas.list().map((x) => x.id)).toEqual(['a', 'b']);
    expect(a.replicas.get('b')).toMatchObject({ id: 'b', url: 'https://127.0.0.1:9001', version: '0.1.0' });
    await b.replicas.close();
    await waitFor('a sees b gone', () => a.replicas.get('b') === undefined);
  });

  it('claim, takeover and a stale release: the newer claim stays, the old holder is told', async () => {
    nextPrefix();
    const [a, b] = [await replica('a'), await replica('b')];
    const revA = await a.sessions.claim('edge-1');
    await waitFor('both see a\'s claim', () => b.sessions.ownerOf('edge-1') === 'a' && a.sessions.isHeldAnywhere('edge-1'));
    expect(await guardHolds(a.client, a.sessions.absentGuard('edge-1'))).toBe(false);

    // The node's link moves to b (a load balancer, a flaky network): the newest link wins.
    const revB = await b.sessions.claim('edge-1');
    expect(revB).toBeGreaterThan(revA);
    await waitFor('a told of the takeover', () => a.takenOver.length > 0);
    expect(a.takenOver).toEqual([['edge-1', 'b']]);
    expect(b.takenOver).toEqual([]);
    expect(a.sessions.heldNodes()).toEqual([]);
    expect(a.sessions.ownerOf('edge-1')).toBe('b');

    // a's old session ends later: its release must not remove b's claim.
    expect(await a.sessions.release('edge-1', revA)).toBe(false);
    const { kv } = await getKey(a.client, clusterKey(prefix, 'cluster/sessions/edge-1'));
    expect(JSON.parse(kv!.value.toString())).toMatchObject({ replica: 'b' });
    expect(a.sessions.absentGuard('edge-1')).toEqual({ key: 'cluster/sessions/edge-1', createRevision: 0, lostMessage: 'node edge-1 is connected to another replica' });
    expect(await guardHolds(a.client, a.sessions.absentGuard('edge-1'))).toBe(false);

    expect(await b.sessions.release('edge-1', revB)).toBe(true);
    await waitFor('nobody holds edge-1', () => !a.sessions.isHeldAnywhere('edge-1') && !b.sessions.isHeldAnywhere('edge-1'));
    expect(await guardHolds(a.client, a.sessions.absentGuard('edge-1'))).toBe(true);
  });

  it('a replica that dies without a word: its registry entry and sessions vanish once its lease runs out', async () => {
    nextPrefix();
    const a = await replica('a');
    const doomed = await replica('doomed', 2);
    await doomed.sessions.claim('edge-2');
    await waitFor('a sees doomed and its session', () => a.replicas.get('doomed') && a.sessions.ownerOf('edge-2') === 'doomed');
    const diedAt = Date.now();
    doomed.lease.abandon();
    doomed.sessions.close();
    await waitFor('doomed gone from a\'s views', () => !a.replicas.get('doomed') && !a.sessions.isHeldAnywhere('edge-2'), 15_000, 50);
    console.log(`a dead replica's entries vanished ${Date.now() - diedAt} ms after its last keepalive (lease TTL 2 s)`);
  });

  it('after a lost lease: re-claims the nodes it still holds, unless another replica claimed them meanwhile', async () => {
    nextPrefix();
    const [a, b] = [await replica('a', 3), await replica('b')];
    const revKeep = await a.sessions.claim('edge-keep');
    await a.sessions.claim('edge-move');
    await waitFor('b sees both', () => b.sessions.ownerOf('edge-keep') === 'a' && b.sessions.ownerOf('edge-move') === 'a');
    const lost: string[] = [];
    a.lease.on('lost', (reason) => lost.push(reason));
    const oldLease = a.lease.id!;
    // etcd forgets a's lease (as a leader's wrongful revoke, etcd #17465, would): its keys vanish.
    await a.client.leaseClient.leaseRevoke({ ID: oldLease });
    await b.sessions.claim('edge-move');
    await waitFor('a lost its lease and holds a new one', () => lost.length > 0 && a.lease.id !== undefined && a.lease.id !== oldLease, 15_000);
    expect(lost[0]).toMatch(/gone|ran out/);
    await waitFor('edge-keep claimed again by a', async () => {
      const { kv } = await getKey(b.client, clusterKey(prefix, 'cluster/sessions/edge-keep'));
      return kv && kv.lease === a.lease.id && b.sessions.ownerOf('edge-keep') === 'a';
    });
    await waitFor('a told edge-move moved', () => a.takenOver.some(([n]) => n === 'edge-move'));
    expect(a.takenOver).toEqual([['edge-move', 'b']]);
    expect(b.sessions.ownerOf('edge-move')).toBe('b');
    await waitFor('a registered again', () => b.replicas.get('a') !== undefined);
    // The hub still holds the first revision: release finds the re-made claim through it.
    expect(await a.sessions.release('edge-keep', revKeep)).toBe(true);
    await waitFor('edge-keep released', () => !b.sessions.isHeldAnywhere('edge-keep'));
  });

  it('after a lost lease: a re-claim that fails (etcd out of reach a moment) is tried again until it holds', async () => {
    nextPrefix();
    // a reaches etcd only through proxies the test can cut; b directly.
    const proxies = cluster.endpointList.map((url) => new TcpProxy(Number(new URL(url).port)));
    const hosts = await Promise.all(proxies.map((p) => p.start()));
    try {
      const a = await replica('a', 10, hosts, 1_000);
      const b = await replica('b');
      await a.sessions.claim('edge-keep');
      await waitFor('b sees the claim', () => b.sessions.ownerOf('edge-keep') === 'a');
      const oldLease = a.lease.id!;
      // The moment a holds its new lease its re-claims start; etcd is out of reach for them.
      a.lease.on('granted', () => {
        for (const p of proxies) p.cut();
        setTimeout(() => { for (const p of proxies) p.restore(); }, 1_500);
      });
      await b.client.leaseClient.leaseRevoke({ ID: oldLease });
      await waitFor('a holds a new lease', () => a.lease.id !== undefined && a.lease.id !== oldLease, 15_000);
      await waitFor('a re-claim failed', () => a.warnings.some((w) => w.includes('could not claim')), 10_000);
      // Before, that was all: the node's session ran on a with no record in etcd.
      await waitFor('edge-keep claimed again by a, under its new lease', async () => {
        const { kv } = await getKey(b.client, clusterKey(prefix, 'cluster/sessions/edge-keep'));
        return kv !== undefined && kv.lease === a.lease.id && b.sessions.ownerOf('edge-keep') === 'a';
      }, 30_000);
    } finally {
      for (const p of proxies) await p.close();
    }
  }, 60_000);

  it('views follow on when the etcd member their watch is on dies (each member in turn)', async () => {
    nextPrefix();
    const [a, b] = [await replica('a'), await replica('b')];
    for (const member of [0, 1, 2]) {
      await cluster.kill(member);
      try {
        // A claim can fail while etcd3's client still shuns the member restarted just before
        // (its circuit breaker stays open 5 s): the hub would try again, so does the test.
        await waitFor(`a claims edge-m${member} with member ${member} down`, () => a.sessions.claim(`edge-m${member}`), 20_000, 500);
        await waitFor(`b sees edge-m${member} with member ${member} down`, () => b.sessions.ownerOf(`edge-m${member}`) === 'a', 20_000);
      } finally {
        await cluster.restart(member);
        await cluster.waitHealthy();
      }
    }
    expect(b.replicas.list().map((r) => r.id)).toEqual(['a', 'b']);
    expect(a.takenOver).toEqual([]);
  });

  it('holds 30,000 sessions: one put per claim, one prefix watch per replica', async () => {
    nextPrefix();
    const [a, b] = [await replica('a'), await replica('b')];
    // etcd's write rate on this shared 2-core machine (300–1,200 lease puts/s at 64 in flight, and
    // a backlog of lease puts starves keepalives) makes 30,000 claims a benchmark, not a test:
    // 29,000 entries are written in 128-op txns as a's (without a lease: the prefix is this test's
    // alone), and 1,000 go through claim(). The views must hold all 30,000 either way.
    const seeded = Array.from({ length: 29_000 }, (_, i) => `edge-seed-${i}`);
    const since = new Date().toISOString();
    for (let i = 0; i < seeded.length; i += 128) {
      await txn(a.client, [], seeded.slice(i, i + 128).map((n) => putOp(clusterKey(prefix, `cluster/sessions/${n}`), JSON.stringify({ replica: 'a', since }))), [], 10_000);
    }
    const claimed = Array.from({ length: 1_000 }, (_, i) => `edge-${i}`);
    const started = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < claimed.length) {
        const i = next++;
        await (i % 2 ? a : b).sessions.claim(claimed[i]!);
      }
    }));
    const claimedMs = Date.now() - started;
    const all = [...seeded, ...claimed];
    await waitFor('both views hold every session', () => all.every((n) => a.sessions.isHeldAnywhere(n) && b.sessions.isHeldAnywhere(n)), 60_000, 200);
    console.log(`1,000 claims in ${claimedMs} ms (${Math.round(1_000 / (claimedMs / 1000))}/s at 64 in flight); views of 30,000 complete ${Date.now() - started} ms after the first claim`);
    expect(a.sessions.ownerOf('edge-1')).toBe('a');
    expect(b.sessions.ownerOf('edge-2')).toBe('b');
    expect(a.sessions.ownerOf('edge-seed-28999')).toBe('a');
    expect(a.sessions.heldNodes()).toHaveLength(500);
    expect(a.takenOver).toEqual([]);
    // A replica that starts now lists them all (paged reads, under gRPC's 4 MiB message limit).
    const c = await replica('c');
    expect(all.every((n) => c.sessions.isHeldAnywhere(n))).toBe(true);
    await a.client.kv.deleteRange({ key: clusterKey(prefix, ''), range_end: prefixEnd(clusterKey(prefix, '')) });
  }, 120_000);
});
