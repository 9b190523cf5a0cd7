import type { z } from 'zod';
import { matchesSelector, type App, type AppNodeStateSchema, type Node, type Rollout, type Workload } from '../../../protocol/index.js';
import { REPLICA_LABEL, hasJoined, workloadAppOf } from '../../controllers/rolloutNodes.js';
import { appGroups } from '../../controllers/variants.js';

export type AppNodeState = z.infer<typeof AppNodeStateSchema>;

/**
 * An app's `status.nodes`, derived on read from its Workloads (one per bound node) rather than
 * stored, so it can never disagree with what the edges reported.
 */
export function appNodeStates(appName: string, workloads: readonly Workload[]): AppNodeState[] {
  return workloads
    .filter((w) => workloadAppOf(w) === appName)
    .map((w): AppNodeState => {
      const state: AppNodeState = {
        node: w.spec.nodeName,
        state: w.status?.state ?? 'Pending',
        restarts: w.status?.restarts ?? 0,
      };
      if (w.status?.lastError) state.lastError = w.status.lastError;
      if (w.status) state.generation = w.status.generation;
      const replica = Number(w.metadata.labels?.[REPLICA_LABEL] ?? 0);
      if (replica > 0) state.replica = replica;
      return state;
    })
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : (a.replica ?? 0) - (b.replica ?? 0)));
}

/**
 * `status.nodes`; when the nodes are given, `status.groups`: the effective spec per group of
 * nodes (variants resolved) for the app's current spec, what `edgectl get app -o yaml` shows;
 * with its Rollout, the newest revision and a summary of the rollout.
 */
export function withNodeStates(app: App, workloads: readonly Workload[], nodes?: readonly Node[], rollout?: Rollout): App {
  const status: NonNullable<App['status']> = { nodes: appNodeStates(app.metadata.name, workloads) };
  if (rollout) {
    const r = rollout.status;
    // The revision the nodes should run: after a rollback the rolled-back-to one, not the newest.
    status.revision = r.revision;
    status.rollout = { phase: r.phase, revision: r.revision, stableRevision: r.stableRevision, message: r.message };
  }
  if (nodes) {
    const targeted = nodes.filter((n) => hasJoined(n) && matchesSelector(app.spec.selector, n.metadata.labels)).map((n) => ({ name: n.metadata.name, labels: n.metadata.labels }));
    status.groups = appGroups(app.spec.template, app.spec.variants ?? [], targeted);
  }
  return { ...app, status };
}
