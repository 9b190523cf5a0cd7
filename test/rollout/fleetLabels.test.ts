import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RolloutHarness } from '../helpers/simRollout.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 5 on 500 simulated nodes: a label change in the middle of a rollout moves nodes in and
 * out of the app cleanly. A node moving in gets the app (first the stable revision or directly
 * the new one, never anything else) and ends on the new revision inside the budget; a node
 * moving out loses its Workload and its edge stops the app, whatever revision it had reached;
 * the rollout re-counts its fleet and finishes.
 */
const NODES = 500;
const IN_RING = 480;
const MAX_UNAVAILABLE = 20;

describe(`label changes mid-rollout on ${NODES} simulated nodes`, () => {
  let h: RolloutHarness;

  beforeAll(async () => {
    h = await RolloutHarness.start({
      nodes: NODES, settings: { rolloutTickMs: 200 },
      labels: (_node, i) => (i < IN_RING ? { ring: 'prod' } : { ring: 'spare' }),
    });
    h.fleet.failures.startDelayMs = () => 50 + Math.floor(Math.random() * 250);
  }, 300_000);

  afterAll(async () => { await h?.stop(); }, 120_000);

  it('nodes labelled in or out mid-rollout join or leave cleanly, and the rollout completes on the new fleet', async () => {
    const app = 'ringed';
    const selector = { matchLabels: { ring: 'prod' } };
    const tracker = await h.track(app);
    await h.createApp(app, { version: 'v1', selector });
    await h.waitRollout(app, 'first revision on the ring', (r) => r.status.revision === 1 && r.status.phase === 'Succeeded');
    const nodes = h.fleet.nodes;
    const ring = nodes.slice(0, IN_RING);
    const spare = nodes.slice(IN_RING);
    await waitFor('the ring runs revision 1', () => h.fleet.nodesRunning(app, 1).length === IN_RING, 60_000);
    for (const n of spare) expect(h.fleet.edge(n).running(app)).toBeUndefined();

    const revision = await h.updateApp(app, { version: 'v2', selector, strategy: { type: 'rolling', maxUnavailable: MAX_UNAVAILABLE, minReadySeconds: 1 } });
    tracker.checkInvariant({ revision, maxUnavailable: MAX_UNAVAILABLE });
    await waitFor('a quarter of the ring assigned revision 2', () => tracker.assignedNow(revision).length >= IN_RING / 4, 120_000, 50);

    const assigned = new Set(tracker.assignedNow(revision));
    const movingOut = [...ring.filter((n) => assigned.has(n)).slice(0, 5), ...ring.filter((n) => !assigned.has(n)).slice(0, 5)];
    const movingIn = spare.slice(0, 10);
    await Promise.all([h.fleet.label(movingOut, { ring: 'spare' }), h.fleet.label(movingIn, { ring: 'prod' })]);

    const finalFleet = IN_RING; // 10 out, 10 in
    const done = await h.waitRollout(app, 'rollout done on the new fleet', (r) => r.status.revision === revision && r.status.phase === 'Succeeded'
      && r.status.counts.healthy === finalFleet, 180_000);
    expect(done.status.waves[done.status.waves.length - 1]!.target).toBe(finalFleet);

    await waitFor('moved-in nodes run revision 2', () => movingIn.every((n) => h.fleet.edge(n).running(app)?.revision === revision
      && h.fleet.edge(n).running(app)?.state === 'Running'), 60_000);
    await waitFor('moved-out nodes stopped the app', () => movingOut.every((n) => h.fleet.edge(n).running(app) === undefined), 60_000);
    for (const n of movingIn) {
      const history = tracker.assignedHistory.get(n);
      expect([[revision], [1, revision]], `${n}: ${JSON.stringify(history)}`).toContainEqual(history);
    }
    for (const n of movingOut) {
      expect(tracker.nodes.has(n), `${n} still has a Workload`).toBe(false);
      const history = tracker.assignedHistory.get(n);
      expect([[1], [1, revision]], `${n}: ${JSON.stringify(history)}`).toContainEqual(history);
    }
    await waitFor('the new ring runs revision 2', () => h.fleet.nodesRunning(app, revision).length === finalFleet, 60_000);

    // After the rollout: a node labelled in gets the stable revision straight away.
    const late = spare[spare.length - 1]!;
    await h.fleet.label([late], { ring: 'prod' });
    await waitFor('a late joiner runs revision 2', () => h.fleet.edge(late).running(app)?.revision === revision, 60_000);
    expect(tracker.assignedHistory.get(late)).toEqual([revision]);

    expect(tracker.violations).toEqual([]);
    expect(h.rolloutViolations).toEqual([]);
    expect(h.watchErrors()).toEqual([]);
  }, 400_000);
});
