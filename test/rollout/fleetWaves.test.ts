import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rollout } from '../../protocol/index.js';
import { RolloutHarness } from '../helpers/simRollout.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * Issue 5 on 500 simulated nodes (real link, real edge SQLite, runtime double):
 * waves advance only when their gate holds (every node of the waves so far healthy for
 * minReadySeconds; an approval wave waits for the operator), and maxUnavailable is never
 * exceeded, checked on every Workload change seen on the watch, in store order. The two tests
 * roll out their own apps on the shared fleet at the same time: trackers, gates and budgets are
 * per app, and neither waits on the other's nodes.
 */
const NODES = 500;

describe.concurrent(`rollout waves and budget on ${NODES} simulated nodes`, () => {
  let h: RolloutHarness;

  beforeAll(async () => {
    h = await RolloutHarness.start({ nodes: NODES, settings: { rolloutTickMs: 200 } });
    // A start takes 50–300 ms, so nodes sit in "updating" long enough for the budget to matter.
    h.fleet.failures.startDelayMs = () => 50 + Math.floor(Math.random() * 250);
  }, 300_000);

  afterAll(async () => { await h?.stop(); }, 120_000);

  it('waves 1% → 10% (approval) → 100%: each wave starts only after the previous one is healthy for minReadySeconds, the approval wave waits', async () => {
    const app = 'waves';
    // The product's shortest positive gate (whole seconds): every node of the big last wave holds
    // a slot of the budget that long, so the gate's length is most of this test's time.
    const minReadySeconds = 1;
    const maxUnavailable = 20;
    const tracker = await h.track(app);
    await h.createApp(app, { version: 'v1' });
    await h.waitRollout(app, 'first revision everywhere', (r) => r.status.revision === 1 && r.status.phase === 'Succeeded');

    const revision = await h.updateApp(app, {
      version: 'v2',
      strategy: { type: 'waves', waves: [{ percent: 1 }, { percent: 10, approval: true }, { percent: 100 }], minReadySeconds, maxUnavailable },
    });
    tracker.checkInvariant({ revision, maxUnavailable });

    const awaiting = await h.waitRollout(app, 'wave 1 awaits approval', (r) => r.status.revision === revision && r.status.phase === 'AwaitingApproval');
    expect(awaiting.status.wave).toBe(1);
    expect(awaiting.status.waves.map((w) => w.target)).toEqual([5, 50, NODES]);
    // Nothing beyond the canary wave moves while the approval is missing, however long we wait.
    await sleep(3 * minReadySeconds * 1000);
    expect(tracker.everAssigned(revision)).toHaveLength(5);
    expect((await h.rollout(app)).status.phase).toBe('AwaitingApproval');

    await h.command(app, 'approve');
    const done = await h.waitRollout(app, 'revision 2 everywhere', (r) => r.status.revision === revision && r.status.phase === 'Succeeded', 180_000);
    expect(done.status.stableRevision).toBe(revision);
    await waitFor('every node runs revision 2', () => h.fleet.nodesRunning(app, revision).length === NODES, 30_000);

    // The gate, in store order: when the (target+1)-th node was assigned, every node of the
    // earlier waves already reported the new revision Running.
    const order = tracker.assignments.filter((a) => a.revision === revision);
    expect(order).toHaveLength(NODES);
    for (const [i, a] of order.entries()) {
      const passedTarget = i >= 50 ? 50 : i >= 5 ? 5 : 0;
      if (a.runningThen < passedTarget) throw new Error(`assignment #${i + 1} (${a.node}, store revision ${a.storeRevision}) came when only ${a.runningThen} nodes ran revision ${revision}; the gate needs ${passedTarget}`);
    }
    // minReadySeconds, on the controller's own clock: a wave is entered only once every node of
    // the earlier waves has been ready that long (readySince is the controller's record).
    assertMinReady(h.history(app), revision, minReadySeconds);

    expect(tracker.violations).toEqual([]);
    expect(tracker.maxUpdatingSeen.get(revision)).toBeGreaterThan(0);
    for (const node of h.fleet.nodes) {
      expect(tracker.assignedHistory.get(node)).toEqual([1, revision]);
      expect(h.fleet.edge(node).startedRevisions(app)).toEqual([1, revision]);
    }
    expect(h.rolloutViolations).toEqual([]);
    expect(h.watchErrors()).toEqual([]);
  }, 300_000);

  it('rolling with maxUnavailable 10%: never more than 50 nodes updating at any store revision', async () => {
    const app = 'rolling';
    const maxUnavailable = 50;
    const tracker = await h.track(app);
    await h.createApp(app, { version: 'v1' });
    await h.waitRollout(app, 'first revision everywhere', (r) => r.status.revision === 1 && r.status.phase === 'Succeeded');

    const revision = await h.updateApp(app, { version: 'v2', strategy: { type: 'rolling', maxUnavailable: '10%', minReadySeconds: 1 } });
    tracker.checkInvariant({ revision, maxUnavailable });
    const done = await h.waitRollout(app, 'rolling update done', (r) => r.status.revision === revision && r.status.phase === 'Succeeded', 180_000);
    expect(done.status.maxUnavailable).toBe(maxUnavailable);
    await waitFor('every node runs revision 2', () => h.fleet.nodesRunning(app, revision).length === NODES, 30_000);

    expect(tracker.violations).toEqual([]);
    const widest = tracker.maxUpdatingSeen.get(revision) ?? 0;
    expect(widest).toBeGreaterThan(0);
    expect(widest).toBeLessThanOrEqual(maxUnavailable);
    for (const r of h.history(app).filter((x) => x.status.revision === revision)) {
      expect(r.status.counts.updating).toBeLessThanOrEqual(maxUnavailable);
    }
    expect(h.rolloutViolations).toEqual([]);
    expect(h.watchErrors()).toEqual([]);
  }, 300_000);
});

/**
 * For each wave k ≥ 1: in the first Rollout object (as persisted, seen on the watch) that has
 * entered wave k, at least the previous wave's cumulative target of nodes must have a
 * readySince ≥ minReadySeconds before that object's updatedAt. Both are the controller's clock.
 */
function assertMinReady(history: Rollout[], revision: number, minReadySeconds: number): void {
  const relevant = history.filter((r) => r.status.revision === revision);
  const waves = relevant[relevant.length - 1]?.status.waves ?? [];
  expect(waves.length).toBeGreaterThan(1);
  for (let k = 1; k < waves.length; k++) {
    const entered = relevant.find((r) => r.status.wave >= k);
    expect(entered, `a Rollout object showing wave ${k}`).toBeDefined();
    const at = Date.parse(entered!.status.updatedAt);
    const readyLongEnough = Object.values(entered!.status.readySince).filter((t) => at - t >= minReadySeconds * 1000).length;
    expect(readyLongEnough, `nodes ready ≥ ${minReadySeconds} s when wave ${k} started (${entered!.status.updatedAt})`).toBeGreaterThanOrEqual(waves[k - 1]!.target);
  }
}
