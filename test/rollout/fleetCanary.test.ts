import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RolloutHarness } from '../helpers/simRollout.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 5 on 500 simulated nodes: a revision that crashes trips the failure threshold on the
 * canary wave, is rolled back there, and the rest of the fleet never receives it. "Never
 * receives" is checked twice: on the cloud (every revision every node was ever assigned, from
 * the Workload watch) and on the edges (every revision each runtime double was asked to start).
 */
const NODES = 500;
const CANARY = 5;

describe(`a bad revision on ${NODES} simulated nodes`, () => {
  let h: RolloutHarness;

  beforeAll(async () => {
    h = await RolloutHarness.start({ nodes: NODES, settings: { rolloutTickMs: 200 } });
    h.fleet.failures.startDelayMs = () => 20 + Math.floor(Math.random() * 100);
  }, 300_000);

  afterAll(async () => { await h?.stop(); }, 120_000);

  it('crashes on the canary wave, trips the threshold, is rolled back there and reaches no other node; the next good revision rolls out', async () => {
    const app = 'canary';
    const strategy = { type: 'waves' as const, waves: [{ count: CANARY }, { percent: 50 }, { percent: 100 }], failureThreshold: 1, autoRollback: true, minReadySeconds: 1 };
    const tracker = await h.track(app);
    await h.createApp(app, { version: 'v1' });
    await h.waitRollout(app, 'first revision everywhere', (r) => r.status.revision === 1 && r.status.phase === 'Succeeded');

    // Revision 2 would crash on EVERY node: only the rollout can keep it to the canary wave.
    h.fleet.fail(2, 'all', { app });
    const bad = await h.updateApp(app, { version: 'v2-crashes', strategy });
    expect(bad).toBe(2);
    const rolledBack = await h.waitRollout(app, 'threshold trips and rolls back', (r) => r.status.phase === 'RolledBack');
    expect(rolledBack.status.revision).toBe(1);
    expect(rolledBack.status.stableRevision).toBe(1);
    expect(rolledBack.status.badRevisions).toContain(bad);
    expect(rolledBack.status.wave).toBe(0);

    const gotBad = tracker.everAssigned(bad);
    expect(gotBad.length).toBeGreaterThan(1); // the threshold is 1: at least two must have failed
    expect(gotBad.length).toBeLessThanOrEqual(CANARY);
    await waitFor('canary nodes back on revision 1, Running', () => gotBad.every((n) => {
      const r = h.fleet.edge(n).running(app);
      return r?.revision === 1 && r.state === 'Running';
    }), 60_000);
    for (const node of h.fleet.nodes) {
      if (gotBad.includes(node)) {
        expect(tracker.assignedHistory.get(node)).toEqual([1, bad, 1]);
        expect(h.fleet.edge(node).startedRevisions(app)).toEqual([1, bad, 1]);
      } else {
        expect(tracker.assignedHistory.get(node), node).toEqual([1]);
        expect(h.fleet.edge(node).startedRevisions(app), node).toEqual([1]);
      }
    }
    // The trip and the rollback are on record as rollout events (the persisted Rollout already
    // shows the rolled-back state: the pass that saw the failures also turned it around).
    const events = await h.api.request('GET', `/apps/${app}/rollout/events`) as { items: { spec: { reason: string; message: string } }[] };
    const reasons = events.items.map((e) => e.spec.reason);
    expect(reasons).toContain('ThresholdTripped');
    expect(reasons).toContain('RolledBack');

    // The fix: revision 3 goes everywhere; revision 2 is never handed out again.
    const good = await h.updateApp(app, { version: 'v3', strategy });
    const done = await h.waitRollout(app, 'revision 3 everywhere', (r) => r.status.revision === good && r.status.phase === 'Succeeded', 180_000);
    expect(done.status.badRevisions).toContain(bad);
    await waitFor('every node runs revision 3', () => h.fleet.nodesRunning(app, good).length === NODES, 60_000);
    expect(tracker.everAssigned(bad).sort()).toEqual([...gotBad].sort());
    for (const node of h.fleet.nodes) {
      expect(h.fleet.edge(node).startedRevisions(app).filter((r) => r === bad).length).toBeLessThanOrEqual(1);
    }
    expect(h.rolloutViolations).toEqual([]);
    expect(h.watchErrors()).toEqual([]);
  }, 400_000);

  it('a revision failing on a few chosen nodes stays under the threshold and completes without rollback', async () => {
    const app = 'flaky';
    const tracker = await h.track(app);
    await h.createApp(app, { version: 'v1' });
    await h.waitRollout(app, 'first revision everywhere', (r) => r.status.revision === 1 && r.status.phase === 'Succeeded');
    tracker.checkInvariant({ revision: 2, maxUnavailable: 50 });
    // 3 chosen nodes crash on revision 2; the threshold tolerates 3 failed nodes (it trips above).
    const chosen = h.fleet.nodes.slice(-3);
    h.fleet.fail(2, chosen, { app });
    const revision = await h.updateApp(app, { version: 'v2', strategy: {
      type: 'waves', waves: [{ percent: 10 }, { percent: 100 }], failureThreshold: 3, autoRollback: true, maxUnavailable: 50,
    } });
    const done = await h.waitRollout(app, 'revision 2 rolled out despite 3 crashing nodes', (r) => r.status.revision === revision && r.status.phase === 'Succeeded', 180_000);
    expect(done.status.counts.failed).toBe(chosen.length);
    expect(done.status.counts.healthy).toBe(NODES - chosen.length);
    expect(tracker.failedOn(revision).sort()).toEqual([...chosen].sort());
    expect(tracker.violations).toEqual([]);
    await waitFor('every other node runs revision 2', () => h.fleet.nodesRunning(app, revision).length === NODES - chosen.length, 60_000);
  }, 300_000);
});
