import { describe, expect, it } from 'vitest';
import type { App, AppRevision, Node, Rollout, Workload } from '../../protocol/index.js';
import { desiredWorkloads, planBindings } from './scheduling.js';

const node = (name: string, labels: Record<string, string>, phase: Node['status']['phase'] = 'Ready'): Node => ({
  kind: 'Node', metadata: { name, labels }, spec: {},
  status: { phase, since: '', lastSeen: null, epoch: null, ackedRevision: 0, agent: null },
});
const app = (name: string, selector: App['spec']['selector'], generation = 1, command = 'sleep'): App => ({
  kind: 'App', metadata: { name, generation },
  spec: { selector, template: { runtime: 'process', command, args: ['60'], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] } },
});

describe('desiredWorkloads', () => {
  const nodes = [node('edge-1', { zone: 'a', gpu: 'yes' }), node('edge-2', { zone: 'b' }), node('edge-3', { zone: 'a' }, 'Offline')];
  it('binds an app to every node its selector matches, Offline nodes included', () => {
    const d = desiredWorkloads([app('web', { matchLabels: { zone: 'a' } })], nodes);
    expect([...d.keys()].sort()).toEqual(['web.edge-1', 'web.edge-3']);
  });
  it('supports set-based expressions', () => {
    const d = desiredWorkloads([app('ml', { matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }),
      app('rest', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] })], nodes);
    expect([...d.keys()].sort()).toEqual(['ml.edge-1', 'rest.edge-2']);
  });
  it('an empty selector selects every node', () => {
    expect(desiredWorkloads([app('all', {})], nodes).size).toBe(3);
  });
  it('binds nothing to a node that has never joined (Pending, made by a join token)', () => {
    const withPending = [...nodes, node('edge-4', { zone: 'a' }, 'Pending')];
    expect([...desiredWorkloads([app('web', { matchLabels: { zone: 'a' } })], withPending).keys()].sort()).toEqual(['web.edge-1', 'web.edge-3']);
  });
  it('never lets two (app, node) pairs share a workload name: the first keeps it, the other is named as unbound', () => {
    // Only an app stored with a dotted name before such names were refused can do this.
    const collisions: string[] = [];
    const d = desiredWorkloads([app('demo', {}), app('demo.x', {})], [node('x.edge-1', {}), node('edge-1', {})], undefined, undefined, collisions);
    expect(d.get('demo.x.edge-1')!.spec).toMatchObject({ app: 'demo', nodeName: 'x.edge-1' });
    expect(d.get('demo.edge-1')!.spec).toMatchObject({ app: 'demo', nodeName: 'edge-1' });
    expect(collisions).toEqual(['app "demo.x" on node "edge-1" is not bound: its workload name "demo.x.edge-1" is app "demo" on node "x.edge-1"; rename the app without "."']);
  });
});

describe('planBindings', () => {
  const nodes = [node('edge-1', { zone: 'a' }), node('edge-2', { zone: 'b' })];
  const existing = (name: string, nodeName: string, generation: number): Workload => ({
    kind: 'Workload', metadata: { name, resourceVersion: 7 },
    spec: { nodeName, app: 'web', generation, template: { runtime: 'process', command: 'sleep', args: ['60'], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] } },
    status: { state: 'Running', restarts: 0, generation, observedAt: 't' },
  });
  it('moves a workload when labels change: removes the old binding, creates the new', () => {
    const plan = planBindings(desiredWorkloads([app('web', { matchLabels: { zone: 'b' } })], nodes), [existing('web.edge-1', 'edge-1', 1)]);
    expect(plan.remove.map((w) => w.metadata.name)).toEqual(['web.edge-1']);
    expect(plan.create.map((w) => w.metadata.name)).toEqual(['web.edge-2']);
    expect(plan.update).toEqual([]);
  });
  it('updates in place when the template changes, keeping status and resourceVersion', () => {
    const plan = planBindings(desiredWorkloads([app('web', { matchLabels: { zone: 'a' } }, 2, 'sleep')], nodes), [existing('web.edge-1', 'edge-1', 1)]);
    expect(plan.update).toHaveLength(1);
    expect(plan.update[0]!.spec.generation).toBe(2);
    expect(plan.update[0]!.metadata.resourceVersion).toBe(7);
    expect(plan.update[0]!.status?.state).toBe('Running');
  });
  it('changes nothing when everything is in place', () => {
    const plan = planBindings(desiredWorkloads([app('web', { matchLabels: { zone: 'a' } })], nodes), [existing('web.edge-1', 'edge-1', 1)]);
    expect(plan).toEqual({ create: [], update: [], remove: [] });
  });
});

describe('desiredWorkloads with a rollout', () => {
  const revision = (n: number, command: string, variants: AppRevision['spec']['variants'] = []): AppRevision => ({
    kind: 'AppRevision', metadata: { name: `web.r${n}` },
    spec: { app: 'web', revision: n, template: app('web', {}, n, command).spec.template, variants },
  });
  const rollout = (assignments: Record<string, number>, stable: number, target: number): Rollout => ({
    kind: 'Rollout', metadata: { name: 'web' }, spec: { app: 'web' },
    status: {
      phase: 'Progressing', revision: target, stableRevision: stable, observedRevision: target, wave: 0, waves: [],
      counts: { pending: 0, updating: 0, healthy: 0, failed: 0, offline: 0 }, maxUnavailable: 1, message: '', badRevisions: [],
      approvedWaves: [], assignments, readySince: {}, startedAt: '', updatedAt: '', finishedAt: null,
    },
  });
  const nodes = [node('edge-1', { zone: 'a' }), node('edge-2', { zone: 'b' }), node('edge-3', { zone: 'b' })];
  const revisions = new Map([[1, revision(1, 'v1')], [2, revision(2, 'v2', [{ name: 'b', selector: { matchLabels: { zone: 'b' } }, overrides: { replicas: 2 } }])]]);
  const existingOn = (name: string, nodeName: string, generation: number): Workload => ({
    kind: 'Workload', metadata: { name, resourceVersion: 3 },
    spec: { nodeName, app: 'web', generation, template: revisions.get(generation)?.spec.template ?? app('web', {}, 1, 'old').spec.template },
  });

  it('a node runs its assignment, else the revision its workload has, else the stable one', () => {
    const existing = new Map([['web.edge-1', existingOn('web.edge-1', 'edge-1', 1)], ['web.edge-2', existingOn('web.edge-2', 'edge-2', 2)]]);
    const d = desiredWorkloads([app('web', {}, 2, 'v2')], nodes, undefined, {
      rollouts: new Map([['web', rollout({ 'edge-1': 2 }, 1, 2)]]), revisions: new Map([['web', revisions]]), existing,
    });
    expect(d.get('web.edge-1')!.spec).toMatchObject({ generation: 2, template: { command: 'v2' } });
    expect(d.get('web.edge-2')!.spec).toMatchObject({ generation: 2, template: { command: 'v2', env: { EF_REPLICA: '0' } } });
    expect(d.get('web-1.edge-2')).toMatchObject({ spec: { app: 'web-1', generation: 2, template: { env: { EF_REPLICA: '1' } } }, labels: { 'edgefleet.io/app': 'web', 'edgefleet.io/replica': '1' } });
    // edge-3 has no workload yet: it starts on the stable revision, whatever the app says now.
    expect(d.get('web.edge-3')!.spec).toMatchObject({ generation: 1, template: { command: 'v1' } });
    expect(d.has('web-1.edge-3')).toBe(false);
  });

  it('leaves a node alone when its revision is unknown, and a replica never takes another app\'s name', () => {
    const existing = new Map([['web.edge-1', existingOn('web.edge-1', 'edge-1', 7)]]);
    const d = desiredWorkloads([app('web', {}, 2, 'v2'), app('web-1', { matchLabels: { zone: 'a' } })], nodes, undefined, {
      rollouts: new Map([['web', rollout({ 'edge-2': 2 }, 1, 2)]]), revisions: new Map([['web', revisions]]), existing,
    });
    expect(d.get('web.edge-1')!.spec).toEqual(existing.get('web.edge-1')!.spec);
    expect(d.get('web-1.edge-1')!.spec.app).toBe('web-1');
    expect(d.get('web-1.edge-1')!.labels).toEqual({ 'edgefleet.io/app': 'web-1' });
  });
});

describe('eachAtMost', () => {
  it('writes every item once, never more than the limit at a time', async () => {
    const { eachAtMost } = await import('../limits/eachAtMost.js');
    let inFlight = 0;
    let widest = 0;
    const seen: number[] = [];
    await eachAtMost(Array.from({ length: 50 }, (_, i) => i), 8, async (i) => {
      inFlight++;
      widest = Math.max(widest, inFlight);
      await new Promise((r) => setTimeout(r, 1 + (i % 3)));
      seen.push(i);
      inFlight--;
    });
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(widest).toBe(8);
    await eachAtMost([], 8, async () => { throw new Error('never called'); });
  });
});
