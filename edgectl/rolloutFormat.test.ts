import { describe, expect, it } from 'vitest';
import { nodesNamed, processTemplate, RolloutWorld } from '../test/helpers/cloudcore/rolloutFixtures.js';
import { historyRows, progressBar, rolloutStatusView, templateSummary, waveRows } from './rolloutFormat.js';

describe('rollout presentation', () => {
  it('draws healthy nodes as # and failed ones as x', () => {
    expect(progressBar({ pending: 5, updating: 0, healthy: 4, failed: 1, offline: 0 }, 10)).toBe('[####x.....] 4/10 healthy');
    expect(progressBar({ pending: 0, updating: 0, healthy: 0, failed: 0, offline: 0 }, 4)).toBe('[####] 0/0 healthy');
  });

  it('shows the waves and the history of a rollout waiting for approval', () => {
    const world = new RolloutWorld(nodesNamed(20), { type: 'waves', waves: [{ count: 1 }, { percent: 30, approval: true }, { percent: 100 }] });
    world.settle();
    world.editApp((s) => ({ ...s, template: processTemplate('v2') }));
    world.settle();
    const view = rolloutStatusView(world.rollout!, new Date(world.now));
    expect(view).toMatch(/Phase:\s+AwaitingApproval/);
    expect(view).toMatch(/Wave:\s+2 of 3/);
    expect(waveRows(world.rollout!)).toEqual([
      ['1', '1', '1', 'Passed', '-', '0', '0', '1', '0', '0'],
      ['2', '6', '5', 'AwaitingApproval', 'required', '5', '0', '0', '0', '0'],
      ['3', '20', '14', 'Waiting', '-', '14', '0', '0', '0', '0'],
    ]);
    const rows = historyRows([...world.revisions.values()], world.rollout, new Date(world.now));
    expect(rows.map((r) => [r[0], r[2]])).toEqual([['1', 'stable'], ['2', 'target (AwaitingApproval)']]);
    expect(templateSummary(processTemplate('v2'))).toBe('process: sleep 60 (env: VERSION=v2)');
  });
});
