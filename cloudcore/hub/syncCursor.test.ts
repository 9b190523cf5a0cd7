import { describe, expect, it } from 'vitest';
import type { Workload } from '../../protocol/index.js';
import { decideResume, isEchoOfEdgeStatus, PendingChanges } from './syncCursor.js';

const base = { knownEpoch: 'epoch-aaaa', helloEpoch: 'epoch-aaaa', helloRevision: 50, compactedRevision: 10, currentRevision: 100 };

describe('decideResume', () => {
  it('resumes from the edge revision when epoch matches and history is available', () => {
    expect(decideResume(base)).toEqual({ mode: 'resume', fromRevision: 50 });
  });
  it('sends a snapshot on a new epoch (wiped edge disk)', () => {
    expect(decideResume({ ...base, helloEpoch: 'epoch-bbbb' }).mode).toBe('snapshot');
  });
  it('sends a snapshot on the first connection', () => {
    expect(decideResume({ ...base, knownEpoch: null }).mode).toBe('snapshot');
  });
  it('sends a snapshot when the edge revision was compacted away', () => {
    expect(decideResume({ ...base, helloRevision: 5 }).mode).toBe('snapshot');
  });
  it('sends a snapshot when the edge is ahead of the store', () => {
    expect(decideResume({ ...base, helloRevision: 101 }).mode).toBe('snapshot');
  });
  it('resumes an edge that has seen nothing yet at revision 0 only if nothing was compacted', () => {
    expect(decideResume({ ...base, helloRevision: 0, compactedRevision: 0 }).mode).toBe('resume');
  });
});

function workload(name: string, rv: number, command = 'sleep'): Workload {
  return {
    kind: 'Workload',
    metadata: { name, resourceVersion: rv },
    spec: { nodeName: 'edge-1', app: name.split('.')[0]!, generation: 1, template: { runtime: 'process', command, args: [], env: {}, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] } },
  };
}

describe('PendingChanges', () => {
  it('coalesces repeated updates of one object to the newest', () => {
    const p = new PendingChanges();
    p.add({ type: 'ADDED', object: workload('a.edge-1', 1, 'v1'), revision: 1 });
    p.add({ type: 'MODIFIED', object: workload('a.edge-1', 2, 'v2'), revision: 2 });
    p.add({ type: 'MODIFIED', object: workload('a.edge-1', 3, 'v3'), revision: 3 });
    const { changes, revision } = p.take();
    expect(revision).toBe(3);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ op: 'put', object: { spec: { template: { command: 'v3' } } } });
    expect(p.size).toBe(0);
  });
  it('a delete after an update wins, and order follows the newest change', () => {
    const p = new PendingChanges();
    p.add({ type: 'ADDED', object: workload('a.edge-1', 1), revision: 1 });
    p.add({ type: 'ADDED', object: workload('b.edge-1', 2), revision: 2 });
    p.add({ type: 'DELETED', object: workload('a.edge-1', 3), revision: 3 });
    const { changes } = p.take();
    expect(changes.map((c) => (c.op === 'put' ? `put ${c.object.metadata.name}` : `delete ${c.name}`))).toEqual(['put b.edge-1', 'delete a.edge-1']);
  });
});

describe('isEchoOfEdgeStatus', () => {
  const base = workload('a.edge-1', 5);
  const w = { ...base, metadata: { ...base.metadata, generation: 3 } };
  const status = (observedGeneration: number) => ({ state: 'Running' as const, restarts: 0, generation: 1, observedGeneration, observedAt: 't' });
  it('skips a status-only write for the object version the edge already holds', () => {
    expect(isEchoOfEdgeStatus({ type: 'MODIFIED', object: { ...w, status: status(3) }, revision: 5 })).toBe(true);
  });
  it('keeps a spec change (new object generation) the edge has not seen, even with the same app generation', () => {
    const newer = { ...w, metadata: { ...w.metadata, generation: 4 }, status: status(3) };
    expect(isEchoOfEdgeStatus({ type: 'MODIFIED', object: newer, revision: 6 })).toBe(false);
  });
  it('keeps additions, deletions and objects without status', () => {
    expect(isEchoOfEdgeStatus({ type: 'ADDED', object: w, revision: 5 })).toBe(false);
    expect(isEchoOfEdgeStatus({ type: 'MODIFIED', object: w, revision: 5 })).toBe(false);
  });
});
