import { describe, expect, it } from 'vitest';
import { cloudPart, cpuShares, perNode } from './rolloutReport.js';

describe('rollout bench report helpers', () => {
  it('attributes profiled functions to cloudcore parts by file', () => {
    expect(cloudPart('step dist/cloudcore/controllers/rolloutPlan.js:120')).toBe('rollout controller');
    expect(cloudPart('reconcile dist/cloudcore/controllers/scheduler.js:80')).toBe('scheduler');
    expect(cloudPart('flush dist/cloudcore/hub/nodeSession.js:200')).toBe('hub (edge links)');
    expect(cloudPart('update dist/cloudcore/store/sqliteStore.js:170')).toBe('store (SQLite)');
    expect(cloudPart('(garbage collector)')).toBe('GC');
    expect(cloudPart('stringify')).toBe('other (node internals, JSON)');
  });

  it('turns write counts into writes per node, biggest first', () => {
    expect(perNode({ Workload: { MODIFIED: 3000 }, Rollout: { MODIFIED: 10 }, Event: { ADDED: 1000 } }, 1000))
      .toEqual({ 'Workload MODIFIED': 3, 'Event ADDED': 1, 'Rollout MODIFIED': 0.01 });
  });
});

describe('cpuShares', () => {
  it('charges store time to the controller that called it, and keeps the window', () => {
    const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url, lineNumber: 0 }, children });
    const profile = {
      nodes: [
        frame(1, '(root)', '', [2, 4, 6]),
        frame(2, 'reconcile', 'file:///x/dist/cloudcore/controllers/rolloutController.js', [3]),
        frame(3, 'list', 'file:///x/dist/cloudcore/store/sqliteStore.js'),
        frame(4, 'applyUpstream', 'file:///x/dist/cloudcore/hub/nodeSession.js', [5]),
        frame(5, 'update', 'file:///x/dist/cloudcore/store/sqliteStore.js'),
        frame(6, '(garbage collector)', ''),
      ],
      samples: [3, 3, 5, 6, 3],
      timeDeltas: [1000, 1000, 1000, 1000, 5000], // µs: samples at 1, 2, 3, 4, 9 ms
    };
    expect(cpuShares(profile, 0, 5)).toEqual({ windowMs: 4, ms: { 'rollout controller': 2, 'hub (edge links)': 1, GC: 1 } });
  });
});
