import { describe, expect, it } from 'vitest';
import { RolloutSchema, type RolloutStrategy } from '../../protocol/index.js';
import { applyRolloutCommand } from './rolloutCommands.js';
import { rolloutOrder } from './rolloutStrategy.js';
import { nodesNamed, processTemplate, RolloutWorld } from '../../test/helpers/cloudcore/rolloutFixtures.js';

/** Rolls revision 1 out (first revision: everywhere at once), then edits the app to revision 2. */
function worldAtRevision2(nodeCount: number, strategy?: RolloutStrategy): RolloutWorld {
  const world = new RolloutWorld(nodesNamed(nodeCount), strategy);
  world.settle(60_000);
  expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', revision: 1, stableRevision: 1 });
  world.editApp((spec) => ({ ...spec, template: processTemplate('v2') }));
  return world;
}

/** Nodes assigned `revision` that do not yet run it healthy: what maxUnavailable bounds. */
function inFlight(world: RolloutWorld, revision: number): number {
  return world.appWorkloads().filter((w) => w.spec.generation === revision && !(w.status?.generation === revision && w.status.state === 'Running')).length;
}

describe('first revision', () => {
  it('goes to every node at once and becomes the stable revision', () => {
    const world = new RolloutWorld(nodesNamed(5));
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', revision: 1, stableRevision: 1, counts: { healthy: 5 } });
    expect([...world.runningRevisions().values()]).toEqual([1, 1, 1, 1, 1]);
    expect(world.events.map((e) => e.reason)).toEqual(['RolloutStarted', 'RolloutSucceeded']);
  });
});

describe('rolling update', () => {
  it('never has more nodes updating than maxUnavailable, and ends with every node on the new revision', () => {
    const world = worldAtRevision2(10, { maxUnavailable: 2 });
    for (let i = 0; i < 50 && !(world.rollout!.status.revision === 2 && world.rollout!.status.phase === 'Succeeded'); i++) {
      world.step();
      world.schedule();
      expect(inFlight(world, 2)).toBeLessThanOrEqual(2);
      world.runEdges();
    }
    world.step();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', revision: 2, stableRevision: 2, maxUnavailable: 2 });
    expect(new Set(world.runningRevisions().values())).toEqual(new Set([2]));
    for (const r of world.history) expect(r.status.counts.updating).toBeLessThanOrEqual(r.status.maxUnavailable);
  });

  it('defaults to 25% of the fleet, rounded up', () => {
    const world = worldAtRevision2(10);
    world.step();
    expect(world.rollout!.status.maxUnavailable).toBe(3);
    expect(world.rollout!.status.counts.updating).toBe(3);
  });

  it('does not pass a gate while nodes are not healthy for minReadySeconds', () => {
    const world = worldAtRevision2(4, { maxUnavailable: 4, minReadySeconds: 30 });
    world.round();
    world.round();
    expect(world.rollout!.status).toMatchObject({ phase: 'Progressing', counts: { updating: 4, healthy: 0 } });
    world.now += 29_000;
    world.step();
    expect(world.rollout!.status.phase).toBe('Progressing');
    world.now += 1_000;
    world.step();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', counts: { healthy: 4 } });
  });

  it('counts a ready=false node as updating', () => {
    const world = worldAtRevision2(2, { maxUnavailable: 2 });
    world.step();
    world.schedule();
    for (const w of world.appWorkloads()) world.report(w, 'Running', false);
    world.step();
    expect(world.rollout!.status.counts).toMatchObject({ updating: 2, healthy: 0 });
  });
});

describe('waves', () => {
  const waves: RolloutStrategy = { type: 'waves', waves: [{ count: 1 }, { percent: 50 }, { percent: 100 }] };

  it('advances a wave only when its gate holds', () => {
    const world = worldAtRevision2(10, waves);
    world.step();
    world.schedule();
    expect(world.rollout!.status).toMatchObject({ phase: 'Progressing', wave: 0 });
    expect(world.rollout!.status.waves.map((w) => [w.target, w.size])).toEqual([[1, 1], [5, 4], [10, 5]]);
    expect(world.appWorkloads().filter((w) => w.spec.generation === 2)).toHaveLength(1);
    // The canary has not reported: nothing more happens however often the controller runs.
    world.step(); world.schedule(); world.step();
    expect(world.rollout!.status.wave).toBe(0);
    expect(world.appWorkloads().filter((w) => w.spec.generation === 2)).toHaveLength(1);
    world.runEdges();
    world.step();
    world.schedule();
    expect(world.rollout!.status.wave).toBe(1);
    expect(world.appWorkloads().filter((w) => w.spec.generation === 2)).toHaveLength(5);
    expect(world.events.map((e) => e.reason)).toContain('WavePassed');
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', stableRevision: 2 });
    expect(world.rollout!.status.waves.every((w) => w.state === 'Passed')).toBe(true);
  });

  it('waits for an operator to approve a wave', () => {
    const world = worldAtRevision2(6, { type: 'waves', waves: [{ count: 1 }, { percent: 100, approval: true }] });
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'AwaitingApproval', wave: 1 });
    expect(world.rollout!.status.waves[1]!.state).toBe('AwaitingApproval');
    expect([...world.runningRevisions().values()].filter((r) => r === 2)).toHaveLength(1);
    world.rollout = applyRolloutCommand(world.rollout!, { type: 'approve' }, { revisions: [1, 2], now: world.now }).rollout;
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', approvedWaves: [1] });
    expect(new Set(world.runningRevisions().values())).toEqual(new Set([2]));
  });

  it('honours a pre-approved wave without stopping', () => {
    const world = worldAtRevision2(6, { type: 'waves', waves: [{ count: 1 }, { percent: 100, approval: true }] });
    world.step();
    world.rollout = applyRolloutCommand(world.rollout!, { type: 'approve', wave: 1 }, { revisions: [1, 2], now: world.now }).rollout;
    world.settle();
    expect(world.rollout!.status.phase).toBe('Succeeded');
  });

  it('limits in-flight nodes inside a wave by maxUnavailable', () => {
    const world = worldAtRevision2(20, { type: 'waves', maxUnavailable: 3, waves: [{ percent: 50 }, { percent: 100 }] });
    world.step();
    world.schedule();
    expect(inFlight(world, 2)).toBe(3);
  });
});

describe('failure threshold', () => {
  const canary: RolloutStrategy = { type: 'waves', waves: [{ count: 2 }, { percent: 100 }], autoRollback: true };

  it('trips on the canaries and rolls them back; the rest of the fleet never receives the bad revision', () => {
    const world = worldAtRevision2(10, canary);
    world.failing.set(2, new Set(['*']));
    world.settle();
    expect(world.received.get(2)?.size).toBe(2);
    expect(world.rollout!.status).toMatchObject({ phase: 'RolledBack', revision: 1, stableRevision: 1, badRevisions: [2] });
    expect(new Set(world.runningRevisions().values())).toEqual(new Set([1]));
    expect(world.events.map((e) => e.reason)).toEqual(expect.arrayContaining(['ThresholdTripped', 'RolledBack']));
  });

  it('without autoRollback stops: failed nodes keep the revision, nobody else gets it', () => {
    const world = worldAtRevision2(10, { ...canary, autoRollback: false });
    world.failing.set(2, new Set(['*']));
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'Failed', revision: 2, stableRevision: 1, counts: { failed: 2, pending: 8 } });
    expect(world.appWorkloads().filter((w) => w.spec.generation === 2)).toHaveLength(2);
  });

  it('tolerates failures up to a percent of the updated nodes', () => {
    const world = worldAtRevision2(8, { maxUnavailable: 8, failureThreshold: '25%', autoRollback: true });
    world.failing.set(2, new Set(['edge-003']));
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', counts: { healthy: 7, failed: 1 } });
  });

  it('a new revision after a rollback rolls out normally from the stable one', () => {
    const world = worldAtRevision2(6, canary);
    world.failing.set(2, new Set(['*']));
    world.settle();
    world.editApp((spec) => ({ ...spec, template: processTemplate('v3') }));
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', revision: 3, stableRevision: 3, badRevisions: [2] });
    expect(new Set(world.runningRevisions().values())).toEqual(new Set([3]));
  });
});

describe('operator commands', () => {
  it('pause stops handing out the revision; resume carries on', () => {
    const world = worldAtRevision2(8, { maxUnavailable: 2 });
    world.round();
    world.rollout = applyRolloutCommand(world.rollout!, { type: 'pause' }, { revisions: [1, 2], now: world.now }).rollout;
    world.settle();
    expect(world.rollout!.status.phase).toBe('Paused');
    const onTwo = world.appWorkloads().filter((w) => w.spec.generation === 2).length;
    expect(onTwo).toBeLessThan(8);
    world.settle();
    expect(world.appWorkloads().filter((w) => w.spec.generation === 2)).toHaveLength(onTwo);
    world.rollout = applyRolloutCommand(world.rollout!, { type: 'resume' }, { revisions: [1, 2], now: world.now }).rollout;
    world.settle();
    expect(world.rollout!.status.phase).toBe('Succeeded');
  });

  it('abort stops for good; a node keeps what it runs', () => {
    const world = worldAtRevision2(8, { maxUnavailable: 2 });
    world.round();
    world.rollout = applyRolloutCommand(world.rollout!, { type: 'abort' }, { revisions: [1, 2], now: world.now }).rollout;
    world.settle();
    expect(world.rollout!.status.phase).toBe('Aborted');
    expect(world.appWorkloads().filter((w) => w.spec.generation === 2).length).toBeGreaterThan(0);
    expect(world.appWorkloads().filter((w) => w.spec.generation === 1).length).toBeGreaterThan(0);
  });

  it('rollback --to-revision moves every node, offline ones included, and marks the revision left bad', () => {
    const world = worldAtRevision2(5, { maxUnavailable: 5 });
    world.settle();
    world.editApp((spec) => ({ ...spec, template: processTemplate('v3') }));
    world.settle();
    world.setOnline('edge-000', false);
    world.rollout = applyRolloutCommand(world.rollout!, { type: 'rollback', toRevision: 1 }, { revisions: [1, 2, 3], now: world.now }).rollout;
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'RolledBack', revision: 1, stableRevision: 1, badRevisions: [3] });
    expect(world.revisionOf('edge-000')).toBe(1);
    expect(world.appWorkloads().every((w) => w.spec.generation === 1)).toBe(true);
  });

  it('refuses commands the state does not allow, naming why', () => {
    const world = worldAtRevision2(3);
    world.settle();
    const r = world.rollout!;
    const ctx = { revisions: [1, 2], now: world.now };
    expect(() => applyRolloutCommand(r, { type: 'approve' }, ctx)).toThrow(/it is Succeeded; there is nothing to approve/);
    expect(() => applyRolloutCommand(r, { type: 'resume' }, ctx)).toThrow(/not Paused/);
    expect(() => applyRolloutCommand(r, { type: 'pause' }, ctx)).toThrow(/only a Progressing or AwaitingApproval/);
    expect(() => applyRolloutCommand(r, { type: 'rollback', toRevision: 9 }, ctx)).toThrow(/revision 9 does not exist/);
    expect(() => applyRolloutCommand(r, { type: 'rollback', toRevision: 2 }, ctx)).toThrow(/at revision 2 already/);
  });
});

describe('restart', () => {
  it('resumes from the persisted Rollout exactly as if nothing had happened', () => {
    const world = worldAtRevision2(12, { type: 'waves', waves: [{ count: 2 }, { percent: 50 }, { percent: 100 }], maxUnavailable: 2, minReadySeconds: 10 });
    for (let i = 0; i < 4; i++) { world.round(); world.now += 5_000; }
    const persisted = RolloutSchema.parse(JSON.parse(JSON.stringify(world.rollout)));
    const restarted = Object.assign(new RolloutWorld([]), structuredClone({ ...world, rollout: persisted, history: [], events: [] }));
    restarted.revisions = new Map(world.revisions);
    restarted.workloads = new Map(world.workloads);
    restarted.failing = new Map();
    const continued = world;
    for (let i = 0; i < 30; i++) {
      for (const w of [continued, restarted]) { w.round(); w.now += 5_000; }
      expect(restarted.rollout!.status).toEqual(continued.rollout!.status);
    }
    expect(restarted.rollout!.status.phase).toBe('Succeeded');
  });
});

describe('fleet changes mid-rollout', () => {
  it('a node whose labels leave the selector drops out; one that joins ends on the new revision', () => {
    const world = new RolloutWorld(nodesNamed(6, { tier: 'edge' }), { maxUnavailable: 1 });
    world.app.spec.selector = { matchExpressions: [{ key: 'tier', operator: 'In', values: ['edge'] }] };
    world.settle();
    world.editApp((spec) => ({ ...spec, template: processTemplate('v2') }));
    world.round();
    world.round();
    world.setLabels('edge-004', { tier: 'lab' });
    world.nodes.push(...nodesNamed(8, { tier: 'edge' }).slice(6));
    world.settle();
    expect(world.workloads.has('web.edge-004')).toBe(false);
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', counts: { healthy: 7 } });
    expect(world.appWorkloads().every((w) => w.spec.generation === 2)).toBe(true);
  });
});

describe('offline nodes', () => {
  it('are not waited for, and converge to the reached revision when they return', () => {
    const world = worldAtRevision2(6, { type: 'waves', waves: [{ count: 2 }, { percent: 100 }] });
    world.setOnline('edge-002', false);
    world.setOnline('edge-005', false);
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', counts: { healthy: 4, offline: 2 } });
    expect(world.revisionOf('edge-002')).toBe(1);
    world.setOnline('edge-002', true);
    world.setOnline('edge-005', true);
    world.settle();
    expect(world.rollout!.status.counts).toMatchObject({ healthy: 6, offline: 0 });
    expect(new Set(world.runningRevisions().values())).toEqual(new Set([2]));
  });

  it('a wave before the last whose nodes are all offline holds, saying why, until one proves the revision healthy', () => {
    const world = worldAtRevision2(4, { type: 'waves', waves: [{ count: 1 }, { percent: 100 }] });
    const canary = rolloutOrder(world.nodes.map((n) => n.metadata.name))[0]!;
    world.setOnline(canary, false);
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'Progressing', wave: 0, counts: { offline: 1 } });
    expect(world.rollout!.status.message).toContain('wave 1 holds: none of its 1 node(s) is reachable to prove revision 2 healthy');
    // The next wave got nothing: the canary proved nothing yet.
    expect(world.appWorkloads().filter((w) => w.spec.generation === 2 && w.spec.nodeName !== canary)).toEqual([]);
    world.setOnline(canary, true);
    world.settle();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', counts: { healthy: 4 } });
  });

  it('never get a revision that was rolled back', () => {
    const world = worldAtRevision2(10, { type: 'waves', waves: [{ count: 3 }, { percent: 100 }], autoRollback: true });
    world.failing.set(2, new Set(['*']));
    // One canary takes the assignment but goes offline before it runs it.
    world.step();
    world.schedule();
    const canaries = world.appWorkloads().filter((w) => w.spec.generation === 2).map((w) => w.spec.nodeName);
    world.setOnline(canaries[0]!, false);
    world.settle();
    expect(world.rollout!.status.phase).toBe('RolledBack');
    world.setOnline(canaries[0]!, true);
    world.settle();
    expect(world.revisionOf(canaries[0]!)).toBe(1);
    expect(new Set(world.runningRevisions().values())).toEqual(new Set([1]));
  });

  it('a node silent for less than the window is still waited for', () => {
    const world = worldAtRevision2(2, { maxUnavailable: 2, offlineWindowSeconds: 120 });
    world.setOnline('edge-001', false);
    world.nodes[1]!.status.lastSeen = new Date(world.now - 60_000).toISOString();
    world.settle();
    expect(world.rollout!.status.phase).toBe('Progressing');
    world.now += 61_000;
    world.step();
    expect(world.rollout!.status).toMatchObject({ phase: 'Succeeded', counts: { offline: 1 } });
  });
});
