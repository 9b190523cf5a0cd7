import { describe, expect, it } from 'vitest';
import { countUpdating, WorkloadTracker, type NodeView } from './simTracker.js';

const workload = (node: string, assigned: number, status?: { generation: number; state: string; ready?: boolean | null }, rv = 1) => ({
  kind: 'Workload',
  metadata: { name: `web.${node}`, resourceVersion: rv },
  spec: { nodeName: node, app: 'web', generation: assigned, template: { runtime: 'process', command: '/bin/true', args: [], env: {}, restartPolicy: 'Always', configs: [], secrets: [] } },
  ...(status ? { status: { restarts: 0, observedAt: '2025-01-01T00:00:00.000Z', ...status } } : {}),
});

describe('countUpdating', () => {
  const nodes = new Map<string, NodeView>([
    ['a', { assigned: 2 }],
    ['b', { assigned: 2, reported: { revision: 1, state: 'Running', ready: null } }],
    ['c', { assigned: 2, reported: { revision: 2, state: 'Running', ready: null } }],
    ['d', { assigned: 2, reported: { revision: 2, state: 'CrashLoop', ready: null } }],
    ['e', { assigned: 2, reported: { revision: 2, state: 'Running', ready: false } }],
    ['f', { assigned: 1, reported: { revision: 1, state: 'Running', ready: null } }],
  ]);
  it('counts assigned-but-not-running-or-failed nodes of the revision', () => {
    expect(countUpdating(nodes, 2)).toBe(3); // a, b, e
    expect(countUpdating(nodes, 2, new Set(['a']))).toBe(2);
    expect(countUpdating(nodes, 1)).toBe(0);
  });
});

describe('WorkloadTracker', () => {
  it('records every assigned revision per node and flags an over-wide rollout', () => {
    const t = new WorkloadTracker('web');
    t.apply('ADDED', workload('a', 1, { generation: 1, state: 'Running' }));
    t.apply('ADDED', workload('b', 1, { generation: 1, state: 'Running' }));
    t.checkInvariant({ revision: 2, maxUnavailable: 1 });
    t.apply('MODIFIED', workload('a', 2, { generation: 1, state: 'Running' }, 5));
    expect(t.violations).toEqual([]);
    t.apply('MODIFIED', workload('b', 2, { generation: 1, state: 'Running' }, 6));
    expect(t.violations).toHaveLength(1);
    expect(t.violations[0]).toContain('store revision 6');
    t.apply('MODIFIED', workload('a', 1, { generation: 2, state: 'CrashLoop' }, 7));
    expect(t.assignedHistory.get('a')).toEqual([1, 2, 1]);
    expect(t.everAssigned(2).sort()).toEqual(['a', 'b']);
    expect(t.assignedNow(1)).toEqual(['a']);
    expect(t.maxUpdatingSeen.get(2)).toBe(2);
  });

  it('ignores other apps and counts objects that do not parse', () => {
    const t = new WorkloadTracker('other');
    t.apply('ADDED', workload('a', 1));
    t.apply('ADDED', { kind: 'Workload', metadata: {} });
    expect(t.events).toBe(0);
    expect(t.badObjects).toBe(1);
  });
});
