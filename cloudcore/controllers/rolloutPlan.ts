import type { App, AppRevision, Event, Node, Rollout, Workload } from '../../protocol/index.js';
import { nextStatus, stepRollout, type RolloutEventSpec, type RolloutTarget } from './rolloutMachine.js';
import { buildFleetView, classifyNode, neverRan } from './rolloutNodes.js';

export { describeRollout, type RolloutEventSpec } from './rolloutMachine.js';

/**
 * An app's rollout: the shared state machine (rolloutMachine.ts) over the app's fleet, where a
 * node's revision is its Workloads' generation and its health their states. Node assignments
 * go out through `status.assignments`, which the scheduler writes into the nodes' Workloads
 * (docs/rollouts.md).
 */

export interface PlanInput {
  app: App;
  revisions: ReadonlyMap<number, AppRevision>;
  rollout: Rollout | undefined;
  nodes: readonly Node[];
  /** Workloads of this app (others are ignored). */
  workloads: readonly Workload[];
  now: number;
}

export interface PlanResult {
  /** undefined only while the app has no revision yet. */
  rollout: Rollout | undefined;
  events: RolloutEventSpec[];
  /** False when nothing but `updatedAt` would change: no write needed. */
  changed: boolean;
}

/** A rollout event as stored: an Event with `spec.app` and no node (listed by GET /events). */
export function rolloutEventObject(app: string, revision: number, e: RolloutEventSpec, now: number, seq: number | string): Event {
  return {
    kind: 'Event',
    metadata: { name: `${app}.rollout.r${revision}-${now}-${seq}`, labels: { 'edgefleet.io/app': app } },
    spec: { reason: e.reason, message: e.message, type: e.type, time: new Date(now).toISOString(), app },
  };
}

export function latestRevision(revisions: ReadonlyMap<number, unknown>): number | undefined {
  let latest: number | undefined;
  for (const n of revisions.keys()) if (latest === undefined || n > latest) latest = n;
  return latest;
}

export function planRollout(input: PlanInput): PlanResult {
  const latest = latestRevision(input.revisions);
  if (latest === undefined) return { rollout: input.rollout, events: [], changed: false };
  const events: RolloutEventSpec[] = [];
  const status = nextStatus(input.rollout?.status, latest, input.now, events, (r) => `revision ${r}`);
  const changed = stepRollout(appTarget(input), status, input.rollout?.status, input.now, events);
  const rollout: Rollout = {
    kind: 'Rollout',
    metadata: input.rollout ? { ...input.rollout.metadata } : { name: input.app.metadata.name },
    spec: { app: input.app.metadata.name, ...(input.app.metadata.uid ? { appUid: input.app.metadata.uid } : {}) },
    status,
  };
  return { rollout, events, changed };
}

/** The app's fleet as the machine sees it: a node's revision is its primary Workload's generation. */
function appTarget(input: PlanInput): RolloutTarget {
  const view = buildFleetView(input.app, input.nodes, input.workloads);
  return {
    strategy: input.app.spec.strategy,
    order: view.order,
    nodes: view.nodes,
    delivered: (node) => view.primary.get(node)?.spec.generation,
    classify: (node, assigned, ctx) => classifyNode(node, assigned, view.workloads.get(node.metadata.name) ?? [], input.revisions.get(ctx.target), ctx),
    neverRan: (node, revision) => neverRan(view.workloads.get(node) ?? [], revision),
  };
}
