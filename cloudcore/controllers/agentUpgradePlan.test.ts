import { describe, expect, it } from 'vitest';
import type { AgentUpgrade, AgentUpgradePhase, Node, RolloutStrategy } from '../../protocol/index.js';
import { nextAgentUpgrade } from '../api/rules/agentUpgradeRequests.js';
import { nodeOwners, planAgentUpgrade } from './agentUpgradePlan.js';

/**
 * The agent upgrade on the shared rollout machine, played against a tiny fleet: the test is
 * every edge (it runs what Node.spec.agent says, or fails to) and the store (it keeps what the
 * plan writes).
 */

const T0 = 1_700_000_000_000;

function node(name: string, version = '0.1.0', labels: Record<string, string> = {}): Node {
  return {
    kind: 'Node', metadata: { name, labels }, spec: {},
    status: { phase: 'Ready', since: '', lastSeen: new Date(T0).toISOString(), epoch: 'e', ackedRevision: 0, agent: { version, os: 'linux', arch: 'x64', hostname: name } },
  };
}

class UpgradeWorld {
  upgrade: AgentUpgrade;
  now = T0;
  events: string[] = [];
  constructor(public nodes: Node[], version: string, strategy?: RolloutStrategy) {
    this.upgrade = nextAgentUpgrade(undefined, { version, ...(strategy ? { strategy } : {}) }, 'edge-agent')!;
  }

  step(): void {
    const plan = planAgentUpgrade({ upgrade: this.upgrade, nodes: this.nodes, now: this.now });
    for (const [name, agent] of plan.deliveries) {
      this.nodes = this.nodes.map((n) => (n.metadata.name === name ? { ...n, spec: { agent } } : n));
    }
    this.upgrade = { ...this.upgrade, status: plan.status };
    this.events.push(...plan.events.map((e) => e.reason));
  }

  /** Every edge acts on what it was told: `outcome` per node decides how its attempt ends. */
  edgesAct(outcome: (node: string) => AgentUpgradePhase = () => 'Committed'): void {
    this.nodes = this.nodes.map((n) => {
      const want = n.spec.agent;
      const agent = n.status.agent!;
      if (!want || (want.version === agent.version && !agent.upgrade) || agent.upgrade?.revision === want.revision) return n;
      if (want.version === agent.version) return n;
      const phase = outcome(n.metadata.name);
      const upgrade = { upgrade: want.upgrade, revision: want.revision, version: want.version, previousVersion: agent.version, phase, message: phase, since: '' };
      return { ...n, status: { ...n.status, agent: { ...agent, version: phase === 'Committed' ? want.version : agent.version, upgrade } } };
    });
  }

  running(): string[] {
    return this.nodes.map((n) => `${n.metadata.name}=${n.status.agent!.version}`);
  }

  converge(outcome?: (node: string) => AgentUpgradePhase, rounds = 12): void {
    for (let i = 0; i < rounds; i++) { this.step(); this.edgesAct(outcome); this.now += 1000; }
    this.step();
  }
}

describe('agent upgrade plan', () => {
  it('starts at the baseline and rolls the first version out in waves, not all at once', () => {
    const world = new UpgradeWorld(['a', 'b', 'c', 'd'].map((n) => node(n)), '0.2.0', { type: 'waves', waves: [{ count: 1 }, { percent: 100 }] });
    world.step();
    const s = world.upgrade.status!;
    expect(s.stableRevision).toBe(1);
    expect(s.revision).toBe(2);
    expect(Object.keys(s.assignments)).toHaveLength(1); // wave 1: one node
    expect(world.nodes.filter((n) => n.spec.agent?.version === '0.2.0')).toHaveLength(1);
    world.converge();
    expect(world.upgrade.status!.phase).toBe('Succeeded');
    expect(world.running()).toEqual(['a=0.2.0', 'b=0.2.0', 'c=0.2.0', 'd=0.2.0']);
    expect(world.events).toContain('WavePassed');
    expect(world.events).toContain('RolloutSucceeded');
  });

  it('a node that rolled back fails the wave; the rollout stops there and the other nodes never get the version', () => {
    const world = new UpgradeWorld(['a', 'b', 'c'].map((n) => node(n)), '0.2.0', { type: 'waves', waves: [{ count: 1 }, { percent: 100 }] });
    world.converge(() => 'RolledBack');
    const s = world.upgrade.status!;
    expect(s.phase).toBe('Failed');
    expect(s.counts.failed).toBe(1);
    expect(world.running()).toEqual(['a=0.1.0', 'b=0.1.0', 'c=0.1.0']);
    // Only the first wave's node was ever told 0.2.0 (it stays failed, and its edge does not
    // try that revision again by itself); the rest were never told.
    expect(world.nodes.filter((n) => n.status.agent!.upgrade?.version === '0.2.0')).toHaveLength(1);
    expect(world.nodes.filter((n) => n.spec.agent?.version === '0.2.0')).toHaveLength(1);
    expect(world.events).toContain('ThresholdTripped');
  });

  it('autoRollback sends nodes that committed the bad version back to their own baseline', () => {
    const world = new UpgradeWorld([node('a', '0.1.0'), node('b', '0.1.5'), node('c', '0.1.0')], '0.2.0', { maxUnavailable: 3, autoRollback: true });
    const order = planAgentUpgrade({ upgrade: world.upgrade, nodes: world.nodes, now: T0 }).status;
    expect(order.maxUnavailable).toBe(3);
    // a and b commit, c rolls back: the threshold (0) trips and everyone goes back.
    world.converge((n) => (n === 'c' ? 'RolledBack' : 'Committed'));
    expect(world.upgrade.status!.phase).toBe('RolledBack');
    const specs = Object.fromEntries(world.nodes.map((n) => [n.metadata.name, n.spec.agent?.version]));
    expect(specs).toEqual({ a: '0.1.0', b: '0.1.5', c: '0.1.0' });
  });

  it('a new version on the same upgrade supersedes it; nodes already there are healthy at once', () => {
    const world = new UpgradeWorld([node('a'), node('b', '0.3.0')], '0.2.0');
    world.converge();
    expect(world.upgrade.status!.phase).toBe('Succeeded');
    world.upgrade = { ...nextAgentUpgrade(world.upgrade, { version: '0.3.0' }, 'edge-agent')!, status: world.upgrade.status! };
    world.converge();
    expect(world.upgrade.status!.revision).toBe(3);
    expect(world.upgrade.status!.stableRevision).toBe(3);
    expect(world.running()).toEqual(['a=0.3.0', 'b=0.3.0']);
  });

  it('a node offline during its wave does not hold the rollout, and is told the version when it returns', () => {
    const world = new UpgradeWorld(['a', 'b', 'c'].map((n) => node(n)), '0.2.0', { type: 'waves', waves: [{ count: 1 }, { percent: 100 }], offlineWindowSeconds: 60 });
    const away = (name: string, phase: Node['status']['phase'], lastSeen: number) => {
      world.nodes = world.nodes.map((n) => (n.metadata.name === name ? { ...n, status: { ...n.status, phase, lastSeen: new Date(lastSeen).toISOString() } } : n));
    };
    // c went away long before the upgrade: it is not waited for.
    away('c', 'Offline', T0 - 120_000);
    world.converge();
    const s = world.upgrade.status!;
    expect(s.phase).toBe('Succeeded');
    expect(s.counts).toMatchObject({ healthy: 2, offline: 1 });
    expect(world.nodes.find((n) => n.metadata.name === 'c')!.spec.agent).toBeUndefined();
    // It comes back: within the rollout's rules (the budget) it is told 0.2.0 and takes it.
    away('c', 'Ready', world.now);
    world.converge(undefined, 4);
    expect(world.nodes.find((n) => n.metadata.name === 'c')!.spec.agent?.version).toBe('0.2.0');
    expect(world.running()).toEqual(['a=0.2.0', 'b=0.2.0', 'c=0.2.0']);
    expect(world.upgrade.status!.counts).toMatchObject({ healthy: 3, offline: 0 });
  });

  it('a node is owned by the newest upgrade whose selector matches it', () => {
    const older = { ...nextAgentUpgrade(undefined, { version: '0.2.0' }, 'all')!, metadata: { name: 'all', creationTimestamp: '2026-01-01T00:00:00Z' } };
    const newer = { ...nextAgentUpgrade(undefined, { version: '0.3.0', selector: { matchLabels: { zone: 'north' } } }, 'north')!, metadata: { name: 'north', creationTimestamp: '2026-02-01T00:00:00Z' } };
    const owners = nodeOwners([older, newer], [node('a', '0.1.0', { zone: 'north' }), node('b', '0.1.0', { zone: 'south' })]);
    expect(Object.fromEntries(owners)).toEqual({ a: 'north', b: 'all' });
  });
});
