import type { Node, NodeCounts, RolloutPhase, RolloutStatus, RolloutStrategy, WaveStatus } from '../../protocol/index.js';
import { canonicalJson } from '../store/objectMeta.js';
import { emptyCounts, type ClassifyContext, type NodeRolloutState } from './rolloutNodes.js';
import {
  resolveMaxUnavailable, resolveStrategy, resolveWaves, thresholdExceeded,
  type ResolvedStrategy, type ResolvedWave,
} from './rolloutStrategy.js';

/**
 * The rollout state machine, pure and shared by everything EdgeFleet rolls out to nodes: an
 * app's revisions (rolloutPlan.ts) and the edge agent's own versions (agentUpgradePlan.ts).
 * (state, target, now) → next state and events. Its whole state is a RolloutStatus, so a
 * cloudcore restart resumes exactly. What differs per subject is behind RolloutTarget: which
 * nodes it targets, what a node was last given, and how a node stands against a revision.
 * Node assignments go out through `status.assignments`, which the subject's writer (the
 * scheduler for apps, the upgrade controller for the agent) delivers (docs/rollouts.md).
 */

export interface RolloutEventSpec {
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
}

/** One subject's fleet as the machine sees it. */
export interface RolloutTarget {
  strategy: RolloutStrategy | undefined;
  /** Targeted nodes in rollout order (stable hash order). */
  order: readonly string[];
  nodes: ReadonlyMap<string, Node>;
  /** The revision the node was last given (delivered), if any. */
  delivered(node: string): number | undefined;
  /** The node's state against `assigned` and the rollout's target revision. */
  classify(node: Node, assigned: number, ctx: ClassifyContext): NodeRolloutState;
  /** True while the node has not started `revision`: a delivery that can still be called off. */
  neverRan(node: string, revision: number): boolean;
  /**
   * The revision a node holds when nothing was delivered to it. Default: the stable one, which
   * is what the scheduler gives an app's new node by itself. A node's agent, though, stays what
   * it is until told otherwise: the agent's target says the baseline.
   */
  undelivered?: number;
}

const ACTIVE: readonly RolloutPhase[] = ['Progressing', 'Paused', 'AwaitingApproval'];

/** A rollout's first state: `stable` is the revision nodes fall back to (null: none yet). */
export function freshStatus(revision: number, stable: number | null, iso: string): RolloutStatus {
  return {
    phase: 'Progressing', revision, stableRevision: stable, observedRevision: revision, wave: 0, waves: [],
    counts: emptyCounts(), maxUnavailable: 1, message: '', badRevisions: [], approvedWaves: [],
    assignments: {}, readySince: {}, startedAt: iso, updatedAt: iso, finishedAt: null,
  };
}

/**
 * Starts a new rollout when `latest` is newer than what the state observed, else carries on
 * from a copy. `what` names a revision in event messages ("revision 3", "version 0.2.0").
 */
export function nextStatus(previous: RolloutStatus | undefined, latest: number, now: number, events: RolloutEventSpec[], what: (revision: number) => string): RolloutStatus {
  const iso = new Date(now).toISOString();
  if (!previous) {
    events.push({ type: 'Normal', reason: 'RolloutStarted', message: `${what(latest)} goes to every node (first revision of the app)` });
    return freshStatus(latest, null, iso);
  }
  if (latest > previous.observedRevision) {
    const stable = previous.phase === 'Succeeded' ? previous.revision : previous.stableRevision;
    events.push({ type: 'Normal', reason: 'RolloutStarted', message: stable === null
      ? `${what(latest)} goes to every node (no revision has succeeded yet)`
      : `rolling out ${what(latest)} (stable: ${what(stable)})${ACTIVE.includes(previous.phase) ? `, superseding ${what(previous.revision)}` : ''}` });
    return { ...freshStatus(latest, stable, iso), badRevisions: [...previous.badRevisions], assignments: { ...previous.assignments } };
  }
  return structuredClone(previous);
}

/** Steps `status` (a copy the caller owns) against the target; true when anything but updatedAt changed. */
export function stepRollout(target: RolloutTarget, status: RolloutStatus, before: RolloutStatus | undefined, now: number, events: RolloutEventSpec[]): boolean {
  step(target, status, now, events);
  const changed = before === undefined || canonicalJson({ ...status, updatedAt: '' }) !== canonicalJson({ ...before, updatedAt: '' });
  if (changed) status.updatedAt = new Date(now).toISOString();
  return changed;
}

/**
 * A change others act on (the scheduler or upgrade controller, operators, watchers of the phase):
 * written at once. Anything else (counts, readiness clocks) may wait for the next tick's write.
 */
export function significantChange(a: RolloutStatus, b: RolloutStatus): boolean {
  const pick = (s: RolloutStatus) => canonicalJson([s.phase, s.revision, s.stableRevision, s.observedRevision, s.wave, s.assignments, s.badRevisions, s.approvedWaves, s.finishedAt, s.maxUnavailable, s.waves.map((w) => [w.target, w.state])]);
  return pick(a) !== pick(b);
}

interface Fleet {
  view: RolloutTarget;
  waves: ResolvedWave[];
  /** Wave index per node. */
  waveOf: Map<string, number>;
  state: Map<string, NodeRolloutState>;
  assigned: Map<string, number>;
}

function step(view: RolloutTarget, status: RolloutStatus, now: number, events: RolloutEventSpec[]): RolloutStatus {
  const strategy = resolveStrategy(view.strategy);
  const fleetSize = view.order.length;
  const first = status.stableRevision === null;
  // The first revision has nothing good to protect: one wave, no budget.
  const waves = first ? [{ target: fleetSize, approval: false, minReadySeconds: strategy.minReadySeconds, failureThreshold: strategy.failureThreshold }] : resolveWaves(strategy, fleetSize);
  const maxUnavailable = first ? Math.max(1, fleetSize) : resolveMaxUnavailable(strategy, fleetSize);
  status.wave = Math.min(status.wave, waves.length - 1);
  const iso = new Date(now).toISOString();

  dropDeliveredAssignments(view, status);
  const fleet: Fleet = { view, waves, waveOf: new Map(), state: new Map(), assigned: new Map() };
  view.order.forEach((node, rank) => fleet.waveOf.set(node, waves.findIndex((w) => rank < w.target)));
  const assign = (node: string, revision: number) => {
    status.assignments[node] = revision;
    fleet.assigned.set(node, revision);
  };
  const classifyAll = () => {
    const fallback = view.undelivered ?? status.stableRevision ?? status.revision;
    for (const node of view.order) {
      fleet.assigned.set(node, status.assignments[node] ?? view.delivered(node) ?? fallback);
    }
    // A rolled-back fleet converges at once, offline nodes included, so none starts the bad revision on return.
    if (status.phase === 'RolledBack') {
      for (const node of view.order) if (fleet.assigned.get(node) !== status.revision) assign(node, status.revision);
    }
    for (const node of view.order) {
      const wave = waves[fleet.waveOf.get(node)!]!;
      fleet.state.set(node, view.classify(view.nodes.get(node)!, fleet.assigned.get(node)!, {
        target: status.revision, now,
        offlineWindowSeconds: strategy.offlineWindowSeconds, minReadySeconds: wave.minReadySeconds, readySince: status.readySince,
      }));
    }
  };
  classifyAll();
  for (const node of Object.keys(status.readySince)) if (!view.nodes.has(node)) delete status.readySince[node];

  if (first) {
    firstRevision(fleet, status, assign, events, iso);
  } else if (ACTIVE.includes(status.phase)) {
    if (tripped(fleet, status, strategy, assign, events, iso)) classifyAll();
    else if (status.phase === 'Progressing' || status.phase === 'AwaitingApproval') advance(fleet, status, maxUnavailable, assign, events, iso);
  } else if (status.phase === 'Succeeded') {
    // Nodes that came back or joined since get the revision, inside the budget.
    assignPending(fleet, status.revision, waves.length - 1, maxUnavailable, assign);
  }

  status.maxUnavailable = maxUnavailable;
  status.waves = waveStatuses(fleet, status);
  status.counts = countOf(fleet, view.order);
  status.message = describeRollout(status, fleetSize);
  return status;
}

/** Entries the scheduler has written into the node's Workload, or for nodes no longer targeted, are done. */
function dropDeliveredAssignments(view: RolloutTarget, status: RolloutStatus): void {
  for (const [node, revision] of Object.entries(status.assignments)) {
    if (!view.nodes.has(node) || view.delivered(node) === revision) delete status.assignments[node];
  }
}

function countOf(fleet: Fleet, nodes: Iterable<string>): NodeCounts {
  const counts = emptyCounts();
  for (const node of nodes) counts[fleet.state.get(node)!]++;
  return counts;
}

/** First revision: every node at once; done when no reachable node is still pending or updating. */
function firstRevision(fleet: Fleet, status: RolloutStatus, assign: (n: string, r: number) => void, events: RolloutEventSpec[], iso: string): void {
  if (status.phase === 'Paused' || status.phase === 'Aborted') return;
  for (const node of fleet.view.order) {
    if (fleet.assigned.get(node) !== status.revision) {
      assign(node, status.revision);
      if (fleet.state.get(node) === 'pending') fleet.state.set(node, 'updating');
    }
  }
  if (status.phase !== 'Progressing' && status.phase !== 'Failed') return;
  const counts = countOf(fleet, fleet.view.order);
  if (counts.pending + counts.updating > 0) return;
  const phase: RolloutPhase = counts.failed > 0 ? 'Failed' : 'Succeeded';
  if (phase === status.phase) return;
  status.phase = phase;
  status.finishedAt = iso;
  if (phase === 'Succeeded') {
    status.stableRevision = status.revision;
    events.push({ type: 'Normal', reason: 'RolloutSucceeded', message: `revision ${status.revision} is running on every reachable node` });
  } else {
    events.push({ type: 'Warning', reason: 'RolloutFailed', message: `revision ${status.revision} failed on ${counts.failed} node(s); there is no earlier good revision to go back to` });
  }
}

/** The failure threshold of the current wave; on a trip, stop (and roll back if asked). */
function tripped(fleet: Fleet, status: RolloutStatus, strategy: ResolvedStrategy, assign: (n: string, r: number) => void, events: RolloutEventSpec[], iso: string): boolean {
  const counts = countOf(fleet, fleet.view.order);
  const updated = counts.healthy + counts.updating + counts.failed;
  const threshold = fleet.waves[status.wave]!.failureThreshold;
  if (!thresholdExceeded(threshold, counts.failed, updated)) return false;
  const bad = status.revision;
  const stable = status.stableRevision!;
  events.push({ type: 'Warning', reason: 'ThresholdTripped', message: `revision ${bad} failed on ${counts.failed} of ${updated} updated node(s) (threshold ${threshold}) in wave ${status.wave + 1}` });
  status.finishedAt = iso;
  if (strategy.autoRollback) {
    status.phase = 'RolledBack';
    status.revision = stable;
    if (!status.badRevisions.includes(bad)) status.badRevisions.push(bad);
    status.readySince = {};
    events.push({ type: 'Warning', reason: 'RolledBack', message: `every node that got revision ${bad} goes back to revision ${stable}` });
    return true;
  }
  status.phase = 'Failed';
  // Deliveries no node has acted on yet are called off, so nobody starts the failed revision later.
  for (const node of fleet.view.order) {
    if (fleet.assigned.get(node) === bad && fleet.view.neverRan(node, bad)) assign(node, stable);
  }
  events.push({ type: 'Warning', reason: 'RolloutFailed', message: `rollout of revision ${bad} stopped; nodes that run it keep it (set autoRollback or use rollback)` });
  return true;
}

/** Progressing / AwaitingApproval: pass gated waves, start the next, hand out the budget. */
function advance(fleet: Fleet, status: RolloutStatus, maxUnavailable: number, assign: (n: string, r: number) => void, events: RolloutEventSpec[], iso: string): void {
  const last = fleet.waves.length - 1;
  for (let guard = 0; guard <= fleet.waves.length; guard++) {
    const wave = fleet.waves[status.wave]!;
    if (wave.approval && !status.approvedWaves.includes(status.wave)) {
      if (status.phase !== 'AwaitingApproval') {
        status.phase = 'AwaitingApproval';
        events.push({ type: 'Normal', reason: 'AwaitingApproval', message: `wave ${status.wave + 1} (${wave.target} nodes in all) waits for an operator's approval` });
      }
      // Nodes of waves already passed (back from offline, or joined) still get the revision.
      if (status.wave > 0) assignPending(fleet, status.revision, status.wave - 1, maxUnavailable, assign);
      return;
    }
    status.phase = 'Progressing';
    if (!gateHolds(fleet, status.wave)) {
      assignPending(fleet, status.revision, status.wave, maxUnavailable, assign);
      return;
    }
    events.push({ type: 'Normal', reason: 'WavePassed', message: `wave ${status.wave + 1} passed: ${wave.target} node(s) in all run revision ${status.revision} or are offline` });
    if (status.wave === last) {
      status.phase = 'Succeeded';
      status.stableRevision = status.revision;
      status.finishedAt = iso;
      events.push({ type: 'Normal', reason: 'RolloutSucceeded', message: `revision ${status.revision} is running on every reachable node` });
      return;
    }
    status.wave++;
    const nextWave = fleet.waves[status.wave]!;
    if (!nextWave.approval || status.approvedWaves.includes(status.wave)) {
      events.push({ type: 'Normal', reason: 'WaveStarted', message: `wave ${status.wave + 1} started: up to ${nextWave.target} node(s) in all` });
    }
  }
}

/** Every reachable node of waves 0..wave is healthy or failed (under the threshold, checked before). */
function gateHolds(fleet: Fleet, wave: number): boolean {
  let own = 0;
  let provedHealthy = 0;
  for (const node of fleet.view.order) {
    const of = fleet.waveOf.get(node)!;
    if (of > wave) continue;
    const state = fleet.state.get(node);
    if (state === 'pending' || state === 'updating') return false;
    if (of === wave) { own++; if (state === 'healthy') provedHealthy++; }
  }
  // A wave before the last gates the ones after it: passing it with none of its nodes healthy
  // (all offline) would prove nothing, so it holds until one is (docs/rollouts.md, "Waves").
  return wave === fleet.waves.length - 1 || own === 0 || provedHealthy > 0;
}

/** Assigns `revision` to pending nodes of waves 0..upToWave in rollout order while the budget lasts. */
function assignPending(fleet: Fleet, revision: number, upToWave: number, maxUnavailable: number, assign: (n: string, r: number) => void): void {
  let updating = 0;
  for (const state of fleet.state.values()) if (state === 'updating') updating++;
  let budget = maxUnavailable - updating;
  for (const node of fleet.view.order) {
    if (budget <= 0) return;
    if (fleet.waveOf.get(node)! > upToWave || fleet.state.get(node) !== 'pending') continue;
    assign(node, revision);
    fleet.state.set(node, 'updating');
    budget--;
  }
}

function waveStatuses(fleet: Fleet, status: RolloutStatus): WaveStatus[] {
  const perWave = fleet.waves.map(() => emptyCounts());
  for (const node of fleet.view.order) perWave[fleet.waveOf.get(node)!]![fleet.state.get(node)!]++;
  const stopped = status.phase === 'Failed' || status.phase === 'Aborted' || status.phase === 'RolledBack';
  return fleet.waves.map((wave, index): WaveStatus => {
    let state: WaveStatus['state'];
    if (index < status.wave || status.phase === 'Succeeded') state = 'Passed';
    else if (index > status.wave) state = 'Waiting';
    else if (stopped) state = 'Stopped';
    else if (status.phase === 'AwaitingApproval') state = 'AwaitingApproval';
    else state = 'Progressing';
    return {
      index, target: wave.target, size: wave.target - (index > 0 ? fleet.waves[index - 1]!.target : 0), state,
      approval: wave.approval, approved: status.approvedWaves.includes(index), counts: perWave[index]!,
    };
  });
}

/**
 * The status message; waves are numbered from 1 for people (the stored index is 0-based).
 * A wave that holds because none of its nodes can prove the revision healthy says so.
 */
export function describeRollout(status: RolloutStatus, fleetSize: number): string {
  const text = describePhase(status, fleetSize);
  const wave = status.waves[status.wave];
  const c = wave?.counts;
  if (status.phase !== 'Progressing' || !wave || !c || status.wave === status.waves.length - 1) return text;
  if (wave.size === 0 || c.healthy > 0 || c.pending > 0 || c.updating > 0) return text;
  return `${text}; wave ${status.wave + 1} holds: none of its ${wave.size} node(s) is reachable to prove revision ${status.revision} healthy`;
}

function describePhase(status: RolloutStatus, fleetSize: number): string {
  const c = status.counts;
  const tally = `${c.healthy}/${fleetSize} healthy, ${c.updating} updating, ${c.failed} failed, ${c.offline} offline`;
  const waveText = status.waves.length > 1 ? `wave ${status.wave + 1} of ${status.waves.length}: ` : '';
  switch (status.phase) {
    case 'Progressing': return `${waveText}rolling out revision ${status.revision}; ${tally}`;
    case 'Paused': return `paused at ${waveText}revision ${status.revision}; ${tally}`;
    case 'AwaitingApproval': return `wave ${status.wave + 1} of revision ${status.revision} waits for approval; ${tally}`;
    case 'Succeeded': return `revision ${status.revision} rolled out; ${tally}`;
    case 'Failed': return `revision ${status.revision} failed; ${tally}`;
    case 'RolledBack': return `rolled back to revision ${status.revision} (bad: ${status.badRevisions.join(', ')}); ${tally}`;
    case 'Aborted': return `aborted at ${waveText}revision ${status.revision}; ${tally}`;
  }
}
