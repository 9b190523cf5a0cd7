import { describe, expect, it } from 'vitest';
import type { App, Node, Workload } from '../../protocol/index.js';
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
