import {
  matchesSelector, workloadName,
  type App, type AppRevision, type Node, type NodeCounts, type Workload,
} from '../../protocol/index.js';
import { rolloutOrder } from './rolloutStrategy.js';
import { effectiveSpec } from './variants.js';

/**
 * Pure: what the rollout controller sees of an app's fleet. The nodes the app targets in
 * rollout order, each node's workloads (one per replica), the revision each node is assigned,
 * and each node's state against the rollout's target revision (docs/rollouts.md, "Node states").
 */

export type NodeRolloutState = keyof NodeCounts;

/** Label the scheduler puts on every Workload of an app, replicas included. */
export const APP_LABEL = 'edgefleet.io/app';
export const REPLICA_LABEL = 'edgefleet.io/replica';

/** Name and `spec.app` of replica `i` of an app: replica 0 keeps the app's name. */
export function replicaAppName(app: string, replica: number): string {
  return replica === 0 ? app : `${app}-${replica}`;
}

/** The app a Workload belongs to (replicas carry the app label; older workloads only spec.app). */
export function workloadAppOf(w: Workload): string {
  return w.metadata.labels?.[APP_LABEL] ?? w.spec.app;
}

/**
 * Has the node ever joined? A Node made by `edgectl token create` is Pending until its edge
 * has redeemed the token and opened its first link (phase Ready); like an unregistered kubelet
 * it receives nothing and is no rollout target (it could never prove health). Once joined it
 * stays joined (Ready or Offline); its first link's snapshot or the change right after it
 * carries what the scheduler then binds.
 */
export function hasJoined(node: Node): boolean {
  return node.status.phase !== 'Pending';
}

export interface FleetView {
  /** Targeted nodes in rollout order (stable hash order). */
  order: string[];
  nodes: Map<string, Node>;
  /** The app's workloads per node, all replicas. */
  workloads: Map<string, Workload[]>;
  /** Replica 0 per node: its spec.generation is the node's assigned revision. */
  primary: Map<string, Workload>;
}

export function buildFleetView(app: App, nodes: readonly Node[], workloads: readonly Workload[]): FleetView {
  const name = app.metadata.name;
  const targeted = nodes.filter((n) => hasJoined(n) && matchesSelector(app.spec.selector, n.metadata.labels));
  const byNode = new Map<string, Workload[]>();
  const primary = new Map<string, Workload>();
  for (const w of workloads) {
    if (workloadAppOf(w) !== name) continue;
    const list = byNode.get(w.spec.nodeName) ?? [];
    list.push(w);
    byNode.set(w.spec.nodeName, list);
    if (w.metadata.name === workloadName(name, w.spec.nodeName)) primary.set(w.spec.nodeName, w);
  }
  return {
    order: rolloutOrder(targeted.map((n) => n.metadata.name)),
    nodes: new Map(targeted.map((n) => [n.metadata.name, n])),
    workloads: byNode,
    primary,
  };
}

/** Not seen within the window: not Ready now, and no heartbeat recorded within it. */
export function isOffline(node: Node, now: number, windowSeconds: number): boolean {
  if (node.status.phase === 'Ready') return false;
  if (!node.status.lastSeen) return true;
  const seen = Date.parse(node.status.lastSeen);
  return Number.isNaN(seen) || now - seen > windowSeconds * 1000;
}

export interface ClassifyContext {
  target: number;
  now: number;
  offlineWindowSeconds: number;
  /** minReadySeconds for this node's wave. */
  minReadySeconds: number;
  /** Mutated: a node's entry is set when first seen ready, removed when not ready. */
  readySince: Record<string, number>;
}

/**
 * A node's state against the target revision:
 * offline (not seen within the window) › pending (not assigned the target) › failed (a replica
 * runs the target and is CrashLoop/Failed) › healthy (every replica runs the target, Running and
 * ready not false, or completed, for minReadySeconds) › updating (assigned, neither yet).
 */
export function classifyNode(node: Node, assigned: number, workloads: readonly Workload[], revision: AppRevision | undefined, ctx: ClassifyContext): NodeRolloutState {
  const name = node.metadata.name;
  if (isOffline(node, ctx.now, ctx.offlineWindowSeconds)) return 'offline';
  if (assigned !== ctx.target) { delete ctx.readySince[name]; return 'pending'; }
  const onTarget = workloads.filter((w) => w.spec.generation === ctx.target && w.status?.generation === ctx.target);
  if (onTarget.some((w) => w.status!.state === 'CrashLoop' || w.status!.state === 'Failed')) { delete ctx.readySince[name]; return 'failed'; }
  const replicas = revision ? effectiveSpec(revision.spec.template, revision.spec.variants, node.metadata.labels).replicas : 1;
  const restartPolicy = revision?.spec.template.restartPolicy ?? 'Always';
  const ready = onTarget.length >= replicas && onTarget.every((w) => isReady(w, restartPolicy));
  return readyFor(name, ready, ctx);
}

/** healthy once `ready` has held for the wave's minReadySeconds, else updating (the clock lives in ctx.readySince). */
export function readyFor(node: string, ready: boolean, ctx: ClassifyContext): NodeRolloutState {
  if (!ready) { delete ctx.readySince[node]; return 'updating'; }
  if (ctx.minReadySeconds <= 0) return 'healthy';
  const since = ctx.readySince[node] ??= ctx.now;
  return ctx.now - since >= ctx.minReadySeconds * 1000 ? 'healthy' : 'updating';
}

function isReady(w: Workload, restartPolicy: string): boolean {
  const s = w.status!;
  if (s.state === 'Running') return s.ready !== false;
  // A run-to-completion workload that finished cleanly is as good as it gets.
  return s.state === 'Exited' && s.exitCode === 0 && restartPolicy !== 'Always';
}

/** True once no replica of the node has reported running `revision` (a delivery that can still be cancelled). */
export function neverRan(workloads: readonly Workload[], revision: number): boolean {
  return !workloads.some((w) => w.status?.generation === revision);
}

export function emptyCounts(): NodeCounts {
  return { pending: 0, updating: 0, healthy: 0, failed: 0, offline: 0 };
}
