import {
  matchesSelector,
  type AgentUpgrade, type AgentUpgradePhase, type Event, type Node, type NodeAgentSpec, type RolloutStatus,
} from '../../protocol/index.js';
import { freshStatus, nextStatus, stepRollout, type RolloutEventSpec, type RolloutTarget } from './rolloutMachine.js';
import { hasJoined, isOffline, readyFor } from './rolloutNodes.js';
import { rolloutOrder } from './rolloutStrategy.js';

/**
 * Pure: an AgentUpgrade rolled out by the shared rollout machine (rolloutMachine.ts). Revision 1
 * is the baseline — each node's own version when the upgrade first reached it — so the first
 * version asked for already goes out in waves, with a stable revision to fall back to. A node's
 * revision is what its Node.spec.agent says (written by the upgrade controller); its health is
 * what its agent reported: running the wanted version, the attempt Committed, Ready.
 */

/** The baseline revision: every node's own version. */
export const BASELINE_REVISION = 1;

/** Phases in which the node has switched to the new agent (it can no longer be called off). */
const SWITCHED: readonly AgentUpgradePhase[] = ['Restarting', 'Checking', 'Committed', 'RolledBack'];

export interface AgentPlanInput {
  upgrade: AgentUpgrade;
  /** The nodes this upgrade owns (nodeOwners). */
  nodes: readonly Node[];
  now: number;
}

export interface AgentPlanResult {
  status: RolloutStatus;
  events: RolloutEventSpec[];
  changed: boolean;
  /** Node.spec.agent to write, per node whose assignment is not delivered yet. */
  deliveries: Map<string, NodeAgentSpec>;
}

/**
 * Which upgrade owns each node: among the upgrades whose selector matches it, the one created
 * last (the API refuses a new upgrade over nodes an active one still rolls out to).
 */
export function nodeOwners(upgrades: readonly AgentUpgrade[], nodes: readonly Node[]): Map<string, string> {
  const newestFirst = [...upgrades].sort((a, b) => created(b).localeCompare(created(a)) || b.metadata.name.localeCompare(a.metadata.name));
  const owners = new Map<string, string>();
  for (const node of nodes) {
    if (!hasJoined(node)) continue;
    const owner = newestFirst.find((u) => matchesSelector(u.spec.selector, node.metadata.labels));
    if (owner) owners.set(node.metadata.name, owner.metadata.name);
  }
  return owners;
}

function created(u: AgentUpgrade): string {
  return u.metadata.creationTimestamp ?? '';
}

/** The version a revision asks for; null for the baseline. */
export function versionOf(upgrade: AgentUpgrade, revision: number): string | null | undefined {
  return upgrade.spec.revisions.find((r) => r.revision === revision)?.version;
}

/** The node's baseline: recorded when this upgrade first reached it, else what it runs now. */
export function baselineOf(upgrade: AgentUpgrade, node: Node): string | undefined {
  const spec = node.spec.agent;
  if (spec && spec.upgrade === upgrade.metadata.name) return spec.baseline;
  return node.status.agent?.version;
}

export function describeRevision(upgrade: AgentUpgrade, revision: number): string {
  const version = versionOf(upgrade, revision);
  return version ? `version ${version} (revision ${revision})` : `each node's own version (revision ${revision})`;
}

export function planAgentUpgrade(input: AgentPlanInput): AgentPlanResult {
  const { upgrade, now } = input;
  const latest = Math.max(...upgrade.spec.revisions.map((r) => r.revision));
  const events: RolloutEventSpec[] = [];
  // Before its first step the upgrade "succeeded" at the baseline: nodes run what they run.
  const seed = upgrade.status ?? {
    ...freshStatus(BASELINE_REVISION, BASELINE_REVISION, new Date(now).toISOString()), phase: 'Succeeded' as const,
  };
  const status = nextStatus(seed, latest, now, events, (r) => describeRevision(upgrade, r));
  const target = agentTarget(upgrade, input.nodes, now);
  const changed = stepRollout(target, status, upgrade.status, now, events);
  const deliveries = new Map<string, NodeAgentSpec>();
  for (const [name, revision] of Object.entries(status.assignments)) {
    const node = target.nodes.get(name);
    const baseline = node && baselineOf(upgrade, node);
    if (!node || !baseline) continue;
    const version = versionOf(upgrade, revision) ?? baseline;
    deliveries.set(name, { upgrade: upgrade.metadata.name, revision, version, baseline });
  }
  return { status, events, changed, deliveries };
}

function agentTarget(upgrade: AgentUpgrade, nodes: readonly Node[], now: number): RolloutTarget {
  const name = upgrade.metadata.name;
  const byName = new Map(nodes.filter(hasJoined).map((n) => [n.metadata.name, n]));
  const attemptOf = (node: Node, revision: number) => {
    const a = node.status.agent?.upgrade;
    return a && a.upgrade === name && a.revision === revision ? a : undefined;
  };
  return {
    strategy: upgrade.spec.strategy,
    // A node nobody told a version runs its own: the baseline, whatever the stable revision is.
    undelivered: BASELINE_REVISION,
    order: rolloutOrder([...byName.keys()]),
    nodes: byName,
    delivered: (node) => {
      const spec = byName.get(node)?.spec.agent;
      return spec && spec.upgrade === name ? spec.revision : undefined;
    },
    classify: (node, assigned, ctx) => {
      const nodeName = node.metadata.name;
      if (isOffline(node, now, ctx.offlineWindowSeconds)) return 'offline';
      if (assigned !== ctx.target) { delete ctx.readySince[nodeName]; return 'pending'; }
      const attempt = attemptOf(node, ctx.target);
      if (attempt && (attempt.phase === 'Failed' || attempt.phase === 'RolledBack')) { delete ctx.readySince[nodeName]; return 'failed'; }
      const wanted = versionOf(upgrade, ctx.target) ?? baselineOf(upgrade, node);
      const ready = node.status.phase === 'Ready' && node.status.agent?.version === wanted && (!attempt || attempt.phase === 'Committed');
      return readyFor(nodeName, ready, ctx);
    },
    neverRan: (node, revision) => {
      const n = byName.get(node);
      if (!n) return true;
      const attempt = attemptOf(n, revision);
      return !(attempt && SWITCHED.includes(attempt.phase));
    },
  };
}

/** An upgrade's rollout event as stored: an Event with `spec.upgrade` and no node. */
export function upgradeEventObject(upgrade: string, revision: number, e: RolloutEventSpec, now: number, seq: number | string): Event {
  return {
    kind: 'Event',
    metadata: { name: `${upgrade}.upgrade.r${revision}-${now}-${seq}`, labels: { 'edgefleet.io/agent-upgrade': upgrade } },
    spec: { reason: e.reason, message: e.message, type: e.type, time: new Date(now).toISOString(), upgrade },
  };
}
