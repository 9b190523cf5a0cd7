import {
  TERMINAL_ROLLOUT_PHASES, matchesSelector,
  type AgentUpgrade, type AgentUpgradeRequest, type Node,
} from '../../../protocol/index.js';

/**
 * Pure rules of `POST /agent-upgrades` (docs/install.md, "Upgrade"): what the store should
 * hold for a request, and which nodes another upgrade still rolls out to.
 */

/** The name an upgrade gets when the request names none: one fleet-wide upgrade, superseded by the next. */
export const DEFAULT_AGENT_UPGRADE_NAME = 'edge-agent';
/** Revisions kept per upgrade (the baseline and the newest always stay). */
export const MAX_AGENT_UPGRADE_REVISIONS = 32;

/**
 * A new upgrade (baseline revision 1, the version as revision 2), or the next revision of an
 * existing one. Undefined when the request asks for nothing new (same version, selector and strategy).
 */
export function nextAgentUpgrade(existing: AgentUpgrade | undefined, request: AgentUpgradeRequest, name: string): AgentUpgrade | undefined {
  const selector = request.selector ?? {};
  if (!existing) {
    return {
      kind: 'AgentUpgrade',
      metadata: { name },
      spec: {
        version: request.version, selector, ...(request.strategy ? { strategy: request.strategy } : {}),
        revisions: [{ revision: 1, version: null }, { revision: 2, version: request.version }],
      },
    };
  }
  const spec = existing.spec;
  const sameVersion = spec.version === request.version;
  const next: AgentUpgrade = {
    ...existing,
    spec: { ...spec, selector, ...(request.strategy ? { strategy: request.strategy } : {}) },
  };
  if (!request.strategy) delete next.spec.strategy;
  if (!sameVersion) {
    const latest = Math.max(...spec.revisions.map((r) => r.revision));
    const revisions = [...spec.revisions, { revision: latest + 1, version: request.version }];
    // Keep the baseline and the newest; old middle revisions go first.
    while (revisions.length > MAX_AGENT_UPGRADE_REVISIONS) revisions.splice(1, 1);
    next.spec.version = request.version;
    next.spec.revisions = revisions;
  }
  return JSON.stringify(next.spec) === JSON.stringify(spec) ? undefined : next;
}

/** Joined nodes the request's selector matches that another, still active upgrade rolls out to. */
export function nodesHeldByOthers(name: string, selector: AgentUpgradeRequest['selector'], upgrades: readonly AgentUpgrade[], nodes: readonly Node[]): Map<string, string[]> {
  const held = new Map<string, string[]>();
  const active = upgrades.filter((u) => u.metadata.name !== name && u.status && !TERMINAL_ROLLOUT_PHASES.includes(u.status.phase));
  for (const node of nodes) {
    if (node.status.phase === 'Pending' || !matchesSelector(selector ?? {}, node.metadata.labels)) continue;
    const other = active.find((u) => matchesSelector(u.spec.selector, node.metadata.labels));
    if (!other) continue;
    const list = held.get(other.metadata.name) ?? [];
    list.push(node.metadata.name);
    held.set(other.metadata.name, list);
  }
  return held;
}
