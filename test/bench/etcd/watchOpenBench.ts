import { EtcdCluster, etcdUnavailable } from '../../helpers/etcdCluster.js';
import { makeDevice } from '../../store/fixtures.js';
import { openEtcdStore } from '../../../cloudcore/store/etcd/etcdStore.js';
import type { Watch } from '../../../cloudcore/store/store.js';

/**
 * How long one replica takes to open N per-node watches (one per edge session) on the etcd store,
 * and to deliver one write to each node's watch, on a real 3-member cluster on loopback. Not a
 * test: it prints figures. Run: `npx tsc -p tsconfig.test.json && node dist-test/test/bench/etcd/watchOpenBench.js [nodes]
 * [watches opened at once] [writes in flight]`.
 */

async function main(): Promise<void> {
  const skip = etcdUnavailable();
  if (skip) {
    console.log(`skipped: ${skip}`);
    return;
  }
  const nodes = Number(process.argv[2] ?? 10_000);
  const cluster = await EtcdCluster.start({ size: 3 });
  const store = await openEtcdStore({ endpoints: cluster.endpointList, prefix: '/bench/' });
  try {
    const from = await store.revision();
    const rss0 = process.memoryUsage().rss;
    let delivered = 0;
    const watches: Watch[] = [];
    const t0 = performance.now();
    // Sessions open concurrently, as edges reconnecting after a replica restart would.
    const batch = Number(process.argv[3] ?? 500);
    for (let i = 0; i < nodes; i += batch) {
      const opened = await Promise.all(Array.from({ length: Math.min(batch, nodes - i) }, (_, j) =>
        store.watch({ node: `node-${i + j}`, fromRevision: from }, () => { delivered++; })));
      watches.push(...opened);
    }
    const openMs = performance.now() - t0;
    const rss1 = process.memoryUsage().rss;
    console.log(`opened ${nodes} node watches in ${(openMs / 1000).toFixed(2)} s (${(openMs / nodes).toFixed(3)} ms each); RSS +${((rss1 - rss0) / 2 ** 20).toFixed(0)} MiB`);

    const t1 = performance.now();
    const writes = Math.min(nodes, 2000);
    const inFlight = Number(process.argv[4] ?? 100);
    for (let i = 0; i < writes; i += inFlight) {
      await Promise.all(Array.from({ length: Math.min(inFlight, writes - i) }, (_, j) => store.create(makeDevice(`dev-${i + j}`, `node-${i + j}`))));
    }
    const writeMs = performance.now() - t1;
    while (delivered < writes) await new Promise((r) => setTimeout(r, 10));
    const deliverMs = performance.now() - t1;
    console.log(`${writes} device writes (${inFlight} in flight): ${(writeMs / 1000).toFixed(2)} s; delivered to their node watches after ${(deliverMs / 1000).toFixed(2)} s`);

    const t2 = performance.now();
    for (const w of watches.splice(0)) w.close();
    console.log(`closed ${nodes} watches in ${((performance.now() - t2) / 1000).toFixed(2)} s`);

    // Every session resumes from before those writes (a replica restarted, its edges came back):
    // each watch start is checked against compaction at its own revision and replays its node's write.
    let replayed = 0;
    const t3 = performance.now();
    for (let i = 0; i < nodes; i += batch) {
      const opened = await Promise.all(Array.from({ length: Math.min(batch, nodes - i) }, (_, j) =>
        store.watch({ node: `node-${i + j}`, fromRevision: from }, () => { replayed++; })));
      watches.push(...opened);
    }
    const reopenMs = performance.now() - t3;
    while (replayed < writes) await new Promise((r) => setTimeout(r, 10));
    console.log(`resumed ${nodes} node watches from before the writes in ${(reopenMs / 1000).toFixed(2)} s; `
      + `their ${writes} replayed changes delivered after ${((performance.now() - t3) / 1000).toFixed(2)} s`);
    for (const w of watches) w.close();
  } finally {
    await store.close();
    await cluster.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
