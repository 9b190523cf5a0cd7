import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RolloutHarness } from '../helpers/simRollout.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 5 on 500 simulated nodes: nodes offline during a rollout do not block it, and on
 * return converge to the revision the rollout has reached, never to one that was rolled back.
 * "Offline" is the real thing: the node's link closes (the cloud marks it Offline), its edge
 * keeps running what it has, and it comes back on the same SQLite state (a resume).
 */
const NODES = 500;
const MAX_UNAVAILABLE = 25;

describe(`offline nodes during rollouts on ${NODES} simulated nodes`, () => {
  let h: RolloutHarness;

  beforeAll(async () => {
    h = await RolloutHarness.start({ nodes: NODES, settings: { rolloutTickMs: 200 } });
    h.fleet.failures.startDelayMs = () => 50 + Math.floor(Math.random() * 200);
  }, 300_000);

  afterAll(async () => { await h?.stop(); }, 120_000);

  it('offline before and during a rollout: it completes without them; on return they get its revision, never a rolled-back one', async () => {
    const app = 'away';
    // offlineWindowSeconds 0: a node whose link is down is not waited for at all.
    const rolling = { type: 'rolling' as const, maxUnavailable: MAX_UNAVAILABLE, minReadySeconds: 1, offlineWindowSeconds: 0 };
    const tracker = await h.track(app);
    await h.createApp(app, { version: 'v1', strategy: rolling });
    await h.waitRollout(app, 'first revision everywhere', (r) => r.status.revision === 1 && r.status.phase === 'Succeeded');

    const nodes = h.fleet.nodes;
    const before = nodes.slice(0, 10); // offline for the whole story
    await h.fleet.offline(before);
    await waitFor('the cloud sees them offline', async () => (await h.rollout(app)).status.counts.offline === before.length, 30_000);

    const r2 = await h.updateApp(app, { version: 'v2', strategy: rolling });
    const excluded = new Set(before);
    tracker.checkInvariant({ revision: r2, maxUnavailable: MAX_UNAVAILABLE, excluded });
    // Mid-rollout, drop 10 more: 5 that already got revision 2, 5 that did not yet.
    await waitFor('a third of the fleet assigned revision 2', () => tracker.assignedNow(r2).length >= NODES / 3, 120_000, 50);
    const assigned = new Set(tracker.assignedNow(r2));
    const candidates = nodes.filter((n) => !excluded.has(n));
    const during = [...candidates.filter((n) => assigned.has(n)).slice(0, 5), ...candidates.filter((n) => !assigned.has(n)).slice(0, 5)];
    for (const n of during) excluded.add(n);
    await h.fleet.offline(during);

    const done = await h.waitRollout(app, 'revision 2 done on the reachable nodes', (r) => r.status.revision === r2 && r.status.phase === 'Succeeded', 180_000);
    expect(done.status.counts.offline).toBeGreaterThanOrEqual(before.length);
    for (const n of before) {
      expect(tracker.assignedHistory.get(n), `${n} was offline: not assigned`).toEqual([1]);
      expect(h.fleet.edge(n).running(app)?.revision).toBe(1);
    }

    await h.fleet.online(during);
    await waitFor('nodes back from mid-rollout run revision 2', () => during.every((n) => h.fleet.edge(n).running(app)?.revision === r2
      && h.fleet.edge(n).running(app)?.state === 'Running'), 60_000);
    for (const n of during) expect(h.fleet.edge(n).startedRevisions(app)).toEqual([1, r2]);

    // Revision 3 crashes and is rolled back while `before` is still away.
    h.fleet.fail(3, 'all', { app });
    const r3 = await h.updateApp(app, { version: 'v3-crashes', strategy: {
      type: 'waves', waves: [{ count: 5 }, { percent: 100 }], failureThreshold: 0, autoRollback: true, offlineWindowSeconds: 0,
    } });
    const back = await h.waitRollout(app, 'revision 3 rolled back', (r) => r.status.phase === 'RolledBack' && r.status.badRevisions.includes(r3));
    expect(back.status.revision).toBe(r2);
    await waitFor('canary nodes back on revision 2', () => tracker.everAssigned(r3).every((n) => h.fleet.edge(n).running(app)?.revision === r2), 60_000);

    await h.fleet.online(before);
    await waitFor('returning nodes run revision 2', () => before.every((n) => {
      const r = h.fleet.edge(n).running(app);
      return r?.revision === r2 && r.state === 'Running';
    }), 60_000);
    for (const n of before) {
      expect(h.fleet.edge(n).startedRevisions(app), n).toEqual([1, r2]);
      expect(tracker.assignedHistory.get(n), n).not.toContain(r3);
    }
    expect(tracker.everAssigned(r3).length).toBeLessThanOrEqual(5);
    await waitFor('the whole fleet runs revision 2', () => h.fleet.nodesRunning(app, r2).length === NODES, 60_000);
    expect(tracker.violations).toEqual([]);
    // docs/rollouts.md: a node that drops offline mid-update and returns still updating may
    // exceed the budget briefly, by at most the number of such nodes.
    expect(h.rolloutViolations.filter((v) => !v.includes('counts.updating'))).toEqual([]);
    const widest = Math.max(...h.history(app).filter((r) => r.status.revision === r2).map((r) => r.status.counts.updating));
    expect(widest).toBeLessThanOrEqual(MAX_UNAVAILABLE + during.length);
    expect(h.watchErrors()).toEqual([]);
  }, 400_000);
});
