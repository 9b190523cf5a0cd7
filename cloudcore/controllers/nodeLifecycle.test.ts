import { describe, expect, it } from 'vitest';
import type { Node } from '../../protocol/index.js';
import { nodesGoneOffline } from './nodeLifecycle.js';

const node = (name: string, phase: Node['status']['phase'], lastSeen: string | null): Node => ({
  kind: 'Node', metadata: { name }, spec: {}, status: { phase, since: '', lastSeen, epoch: null, ackedRevision: 0, agent: null },
});

describe('nodesGoneOffline', () => {
  const now = Date.parse('2026-12-06T03:00:00Z');
  const window = 90_000;
  const started = now - 10 * window;
  const ago = (ms: number) => new Date(now - ms).toISOString();

  it('marks Ready nodes that no link holds and that were silent for the window', () => {
    const nodes = [
      node('silent', 'Ready', ago(window + 1)),
      node('never-seen', 'Ready', null),
      node('just-left', 'Ready', ago(5_000)), // its replica stopped; it is on its way to another
      node('linked', 'Ready', ago(10 * window)),
      node('already', 'Offline', ago(10 * window)),
    ];
    expect(nodesGoneOffline(nodes, (n) => n === 'linked', now, window, started)).toEqual(['silent', 'never-seen']);
  });

  it('judges nobody during the first window after its own start', () => {
    expect(nodesGoneOffline([node('silent', 'Ready', ago(10 * window))], () => false, now, window, now - window + 1)).toEqual([]);
  });
});
