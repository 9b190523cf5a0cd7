import { describe, expect, it } from 'vitest';
import type { Workload } from '../../protocol/index.js';
import { MemoryLinkState } from './memoryLinkState.js';

const workload = (app: string, node: string, marker: string): Workload => ({
  kind: 'Workload',
  metadata: { name: `${app}.${node}`, resourceVersion: 1 },
  spec: { nodeName: node, app, generation: 1, template: { runtime: 'process', command: '/bin/true', args: [marker], env: {}, restartPolicy: 'Never', probes: {}, configs: [], secrets: [] } },
});

describe('MemoryLinkState', () => {
  it('applies snapshots and deltas and follows the revision', () => {
    const s = new MemoryLinkState('n1');
    expect(s.epoch()).toMatch(/^[0-9a-f]{16}$/);
    expect(s.applySync({ type: 'sync', mode: 'snapshot', revision: 5, changes: [{ op: 'put', object: workload('a', 'n1', 'v1') }] }))
      .toEqual({ changed: ['a.n1'], removed: [] });
    expect(s.applySync({ type: 'sync', mode: 'delta', revision: 7, changes: [{ op: 'put', object: workload('b', 'n1', 'v1') }] }).changed).toEqual(['b.n1']);
    expect(s.lastRevision()).toBe(7);
    // A snapshot replaces the whole set.
    expect(s.applySync({ type: 'sync', mode: 'snapshot', revision: 9, changes: [{ op: 'put', object: workload('b', 'n1', 'v2') }] }))
      .toEqual({ changed: ['b.n1'], removed: ['a.n1'] });
    expect(s.applySync({ type: 'sync', mode: 'delta', revision: 10, changes: [{ op: 'delete', kind: 'Workload', name: 'b.n1' }] }).removed).toEqual(['b.n1']);
    expect(s.desired.size).toBe(0);
    expect(s.pending(10)).toEqual([]);
  });

  it('counts and drops workloads bound to another node', () => {
    const s = new MemoryLinkState('n1');
    s.applySync({ type: 'sync', mode: 'delta', revision: 3, changes: [{ op: 'put', object: workload('a', 'n2', 'v1') }] });
    expect(s.foreignObjects).toBe(1);
    expect(s.desired.size).toBe(0);
  });
});
