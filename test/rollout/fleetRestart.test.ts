import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RolloutHarness } from '../helpers/simRollout.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 5 on 500 simulated nodes: cloudcore (a real child process, dist/ build) is killed with
 * SIGKILL in the middle of a wave and restarted on the same data dir; the rollout resumes from
 * the store exactly where it was: same revision and wave, no node handed a revision twice or
 * out of order, the approval gate still closed, the budget still held; a second kill right
 * after an approval keeps the approval.
 */
const NODES = 500;
const MAX_UNAVAILABLE = 20;

describe(`cloudcore killed mid-rollout with ${NODES} simulated nodes`, () => {
  let h: RolloutHarness;

  beforeAll(async () => {
    h = await RolloutHarness.start({ nodes: NODES, cloud: 'child', settings: { rolloutTickMs: 200 } });
    // Slow starts keep a wave in progress long enough to kill cloudcore inside it.
    h.fleet.failures.startDelayMs = () => 200 + Math.floor(Math.random() * 600);
  }, 300_000);

  afterAll(async () => { await h?.stop(); }, 120_000);

  it('resumes the wave it was in, keeps the approval gate, finishes the rollout', async () => {
    const app = 'resume';
    const tracker = await h.track(app);
    await h.createApp(app, { version: 'v1' });
    await h.waitRollout(app, 'first revision everywhere', (r) => r.status.revision === 1 && r.status.phase === 'Succeeded');

    const revision = await h.updateApp(app, { version: 'v2', strategy: {
      type: 'waves', waves: [{ percent: 2 }, { percent: 40 }, { percent: 70, approval: true }, { percent: 100 }],
      minReadySeconds: 1, maxUnavailable: MAX_UNAVAILABLE,
    } });
    tracker.checkInvariant({ revision, maxUnavailable: MAX_UNAVAILABLE });

    // Kill inside wave 1 (2 % → 40 %), once part of it is done and part is not.
    const mid = await h.waitRollout(app, 'wave 1 under way', (r) => r.status.revision === revision && r.status.wave === 1
      && r.status.waves[1]!.counts.healthy >= 20 && r.status.waves[1]!.counts.healthy < r.status.waves[1]!.size - MAX_UNAVAILABLE, 120_000);
    const oldPid = h.cloud.pid();
    await h.cloud.kill();
    const assignedAtKill = tracker.everAssigned(revision).length;
    expect(assignedAtKill).toBeLessThan(mid.status.waves[1]!.target);
    await h.cloud.restart();
    expect(h.cloud.pid()).not.toBe(oldPid);

    const resumed = await h.rollout(app);
    expect(resumed.status.revision).toBe(revision);
    expect(resumed.status.stableRevision).toBe(1);
    expect(resumed.status.wave).toBeGreaterThanOrEqual(1);
    expect(['Progressing', 'AwaitingApproval']).toContain(resumed.status.phase);

    const awaiting = await h.waitRollout(app, 'wave 2 awaits approval after the restart', (r) => r.status.phase === 'AwaitingApproval', 180_000);
    expect(awaiting.status.wave).toBe(2);
    expect(tracker.everAssigned(revision)).toHaveLength(awaiting.status.waves[1]!.target);

    // Approve, and kill cloudcore right after it said yes: the approval is in the store.
    await h.command(app, 'approve');
    await h.cloud.kill();
    await h.cloud.restart();
    const done = await h.waitRollout(app, 'rollout finished after the second restart', (r) => r.status.revision === revision && r.status.phase === 'Succeeded', 240_000);
    expect(done.status.approvedWaves).toContain(2);
    await waitFor('every node runs revision 2', () => h.fleet.nodesRunning(app, revision).length === NODES, 60_000);

    for (const node of h.fleet.nodes) {
      expect(tracker.assignedHistory.get(node), node).toEqual([1, revision]);
      expect(h.fleet.edge(node).startedRevisions(app), node).toEqual([1, revision]);
    }
    expect(tracker.violations).toEqual([]);
    expect(h.rolloutViolations).toEqual([]);
    expect(h.watchErrors().filter((e) => !e.includes('fetch failed'))).toEqual([]);
  }, 600_000);
});
