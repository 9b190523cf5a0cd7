import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimFleet } from '../helpers/simFleet.js';
import { RolloutHarness } from '../helpers/simRollout.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 19: `edgectl token create edge-3` makes a Pending Node (never joined). It must not be
 * bound or counted as a rollout target: a canary wave filled with it "passed" with nothing
 * proven, and the next wave updated every real node at once. Once edge-3 joins, the app reaches it.
 */
describe('a node that has never joined', () => {
  let h: RolloutHarness;
  let late: SimFleet | undefined;

  beforeAll(async () => {
    h = await RolloutHarness.start({ nodes: 2, settings: { rolloutTickMs: 200 } });
  }, 120_000);

  afterAll(async () => {
    await late?.stop();
    await h?.stop();
  }, 60_000);

  it('is neither bound nor a canary target; the app reaches it once it joins', async () => {
    const app = 'pending';
    const strategy = { type: 'waves' as const, waves: [{ count: 1 }, { percent: 100, approval: true }], minReadySeconds: 0 };
    const tracker = await h.track(app);
    await h.api.mintToken('edge-3'); // the Pending Node, as `edgectl token create edge-3` makes it
    await h.createApp(app, { version: 'v1', strategy });
    await h.waitRollout(app, 'first revision on the joined nodes', (r) => r.status.revision === 1 && r.status.phase === 'Succeeded');
    const first = await h.api.request('GET', `/apps/${app}`) as { status?: { nodes: { node: string }[] } };
    expect(first.status?.nodes.map((n) => n.node).sort()).toEqual([...h.fleet.nodes].sort());

    await h.updateApp(app, { version: 'v2', strategy });
    const held = await h.waitRollout(app, 'canary passed, next wave awaits approval', (r) => r.status.revision === 2 && r.status.waves[1]?.state === 'AwaitingApproval');
    // The canary is one of the joined nodes, and it proved health there.
    expect(held.status.waves[0]).toMatchObject({ size: 1, state: 'Passed', counts: { healthy: 1, offline: 0 } });
    expect(held.status.counts.healthy + held.status.counts.pending + held.status.counts.updating).toBe(2);
    expect(tracker.everAssigned(2)).toHaveLength(1);
    expect(tracker.assignedHistory.has('edge-3')).toBe(false);

    // edge-3 joins: it is bound and runs the app.
    late = await SimFleet.start({ cloudUrl: h.cloud.url, apiUrl: h.cloud.url, adminToken: h.cloud.adminToken, nodes: ['edge-3'] });
    await waitFor('edge-3 runs the app', () => late?.edge('edge-3').running(app)?.state === 'Running', 60_000);
  }, 120_000);
});
