import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolloutOrder } from '../../cloudcore/controllers/rolloutStrategy.js';
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

  it('a canary wave whose nodes are all offline holds, says why, and passes once its node is back', async () => {
    const app = 'held';
    const strategy = { type: 'waves' as const, waves: [{ count: 1 }, { percent: 100 }], offlineWindowSeconds: 1 };
    const tracker = await h.track(app);
    await h.createApp(app, { version: 'v1', strategy });
    await h.waitRollout(app, 'first revision everywhere', (r) => r.status.revision === 1 && r.status.phase === 'Succeeded');
    // Every joined node is a target: edge-3 joined in the test above (separately, as `late`).
    const canary = rolloutOrder([...h.fleet.nodes, ...(late?.nodes ?? [])])[0]!;
    const owner = h.fleet.edges.has(canary) ? h.fleet : late!;
    await owner.offline([canary]);
    await h.updateApp(app, { version: 'v2', strategy });
    const held = await h.waitRollout(app, 'the canary wave holds', (r) => r.status.revision === 2 && r.status.message.includes('wave 1 of 2: rolling out revision 2') && r.status.message.includes('wave 1 holds'), 30_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}; last status: ${JSON.stringify((await h.rollout(app)).status)}`);
    });
    expect(held.status).toMatchObject({ phase: 'Progressing', wave: 0 });
    expect(held.status.message).toContain('none of its 1 node(s) is reachable to prove revision 2 healthy');
    // The canary may have taken the assignment before it was seen offline; no other node did.
    expect(tracker.everAssigned(2).filter((n) => n !== canary)).toEqual([]);
    await owner.online([canary]);
    await h.waitRollout(app, 'rolled out once the canary proved it', (r) => r.status.revision === 2 && r.status.phase === 'Succeeded', 60_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}; last status: ${JSON.stringify((await h.rollout(app)).status)}`);
    });
    expect(owner.edge(canary).startedRevisions(app)).toEqual([1, 2]);
  }, 120_000);
});
