import type { z } from 'zod';
import type { App, AppNodeStateSchema, Workload } from '../../protocol/index.js';

export type AppNodeState = z.infer<typeof AppNodeStateSchema>;

/**
 * An app's `status.nodes`, derived on read from its Workloads (one per bound node) rather than
 * stored, so it can never disagree with what the edges reported.
 */
export function appNodeStates(appName: string, workloads: readonly Workload[]): AppNodeState[] {
  return workloads
    .filter((w) => w.spec.app === appName)
    .map((w): AppNodeState => {
      const state: AppNodeState = {
        node: w.spec.nodeName,
        state: w.status?.state ?? 'Pending',
        restarts: w.status?.restarts ?? 0,
      };
      if (w.status?.lastError) state.lastError = w.status.lastError;
      if (w.status) state.generation = w.status.generation;
      return state;
    })
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
}

export function withNodeStates(app: App, workloads: readonly Workload[]): App {
  return { ...app, status: { nodes: appNodeStates(app.metadata.name, workloads) } };
}
