import {
  matchesSelector, workloadName,
  type App, type AppRevision, type Node, type Rollout, type Variant, type Workload, type WorkloadTemplate,
} from '../../protocol/index.js';
import { APP_LABEL, REPLICA_LABEL, hasJoined, replicaAppName } from './rolloutNodes.js';
import { effectiveSpec, replicaTemplates } from './variants.js';

/**
 * Pure scheduling: which workloads should exist for a set of apps and nodes, and what must
 * change to get there. An app is bound to every joined node its selector matches. A node
 * that has never joined (Pending, made by a join token) is bound to nothing; an Offline node
 * keeps its workloads (edge autonomy, no eviction).
 *
 * Which revision a node runs is the rollout's call (docs/rollouts.md): a pending assignment in
 * the app's Rollout, else what the node's Workload already carries, else the stable revision.
 * The template is that AppRevision's, with the variants matching the node's labels applied;
 * each replica is its own Workload (replica 0 keeps the name `<app>.<node>`).
 */

export type WorkloadSpec = Workload['spec'];

export interface DesiredWorkload {
  spec: WorkloadSpec;
  labels: Record<string, string>;
}

/** What the rollout controller decided, for the scheduler to materialise. */
export interface RolloutContext {
  rollouts: ReadonlyMap<string, Rollout>;
  /** Per app: its AppRevisions by number. */
  revisions: ReadonlyMap<string, ReadonlyMap<number, AppRevision>>;
  /** Existing Workloads by name: a node keeps the revision its Workload carries. */
  existing: ReadonlyMap<string, Workload>;
}

const NO_ROLLOUTS: RolloutContext = { rollouts: new Map(), revisions: new Map(), existing: new Map() };

/** Config and secret contents by name, as the store holds them. */
export interface DataObjects {
  configs: ReadonlyMap<string, Record<string, string>>;
  secrets: ReadonlyMap<string, Record<string, string>>;
}

const NO_DATA: DataObjects = { configs: new Map(), secrets: new Map() };

/**
 * `collisions` receives one line per workload name two (app, node) pairs would share: possible
 * only for an app stored with a dotted name before such names were refused. The first pair
 * (apps in the order given) keeps the name; the other is not bound, and said so.
 */
export function desiredWorkloads(
  apps: App[], nodes: Node[], data: DataObjects = NO_DATA, ctx: RolloutContext = NO_ROLLOUTS, collisions: string[] = [],
): Map<string, DesiredWorkload> {
  const desired = new Map<string, DesiredWorkload>();
  const appNames = new Set(apps.map((a) => a.metadata.name));
  for (const app of apps) {
    const name = app.metadata.name;
    const rollout = ctx.rollouts.get(name);
    const revisions = ctx.revisions.get(name);
    for (const node of nodes) {
      // A node that has never joined gets nothing yet: it is bound when its edge joins.
      if (!hasJoined(node) || !matchesSelector(app.spec.selector, node.metadata.labels)) continue;
      const nodeName = node.metadata.name;
      let source: { generation: number; template: WorkloadTemplate; variants: readonly Variant[] } | undefined;
      if (!rollout) {
        // Before the rollout controller's first pass over a new app: its spec as it stands.
        source = { generation: app.metadata.generation ?? 1, template: app.spec.template, variants: app.spec.variants ?? [] };
      } else {
        const current = ctx.existing.get(workloadName(name, nodeName));
        const fallback = rollout.status.stableRevision ?? rollout.status.revision;
        const wanted = rollout.status.assignments[nodeName] ?? current?.spec.generation ?? fallback;
        const revision = revisions?.get(wanted) ?? (current ? undefined : revisions?.get(fallback));
        if (revision) source = { generation: revision.spec.revision, template: revision.spec.template, variants: revision.spec.variants };
        else if (current) {
          // A revision we no longer know (pruned, or from before revisions existed): leave the node as it is.
          keepAsIs(desired, ctx.existing, name, nodeName);
          continue;
        } else continue;
      }
      const templates = replicaTemplates(effectiveSpec(source.template, source.variants, node.metadata.labels));
      templates.forEach((template, replica) => {
        const runAs = replicaAppName(name, replica);
        // A replica must not take the name of another app.
        if (replica > 0 && appNames.has(runAs)) return;
        const resolved = resolveData(template, data);
        const wname = workloadName(runAs, nodeName);
        const taken = desired.get(wname)?.spec;
        if (taken && (taken.app !== runAs || taken.nodeName !== nodeName)) {
          collisions.push(`app "${runAs}" on node "${nodeName}" is not bound: its workload name "${wname}" is app "${taken.app}" on node "${taken.nodeName}"; rename the app without "."`);
          return;
        }
        desired.set(wname, {
          spec: { nodeName, app: runAs, generation: source.generation, template, ...(resolved ? { resolved } : {}) },
          labels: replica === 0 ? { [APP_LABEL]: name } : { [APP_LABEL]: name, [REPLICA_LABEL]: String(replica) },
        });
      });
    }
  }
  return desired;
}

function keepAsIs(desired: Map<string, DesiredWorkload>, existing: ReadonlyMap<string, Workload>, app: string, node: string): void {
  // Replicas are numbered without gaps (at most 16), so looking them up by name is enough.
  for (let replica = 0; replica <= 16; replica++) {
    const name = workloadName(replicaAppName(app, replica), node);
    const w = existing.get(name);
    if (!w || (w.metadata.labels?.[APP_LABEL] ?? w.spec.app) !== app) break;
    desired.set(name, { spec: w.spec, labels: w.metadata.labels ?? { [APP_LABEL]: app } });
  }
}

/** Copies in the configs and secrets a template refers to; undefined when it refers to none. */
export function resolveData(template: WorkloadTemplate, data: DataObjects): WorkloadSpec['resolved'] {
  if (template.configs.length === 0 && template.secrets.length === 0) return undefined;
  const resolved: NonNullable<WorkloadSpec['resolved']> = { configs: {}, secrets: {}, missing: [] };
  for (const [refs, source, target, kind] of [
    [template.configs, data.configs, resolved.configs, 'config'],
    [template.secrets, data.secrets, resolved.secrets, 'secret'],
  ] as const) {
    for (const ref of refs) {
      const found = source.get(ref.name);
      if (found) target[ref.name] = found;
      else resolved.missing.push(`${kind} "${ref.name}"`);
    }
  }
  return resolved;
}

export interface BindingPlan {
  create: Workload[];
  /** Existing objects with their new spec (status and metadata kept for optimistic concurrency). */
  update: Workload[];
  remove: Workload[];
}

export function planBindings(desired: Map<string, DesiredWorkload>, existing: Workload[]): BindingPlan {
  const plan: BindingPlan = { create: [], update: [], remove: [] };
  const seen = new Set<string>();
  for (const current of existing) {
    const name = current.metadata.name;
    seen.add(name);
    const want = desired.get(name);
    if (!want) plan.remove.push(current);
    else if (!sameSpec(current.spec, want.spec)) plan.update.push({ ...current, spec: want.spec });
  }
  for (const [name, want] of desired) {
    if (!seen.has(name)) plan.create.push({ kind: 'Workload', metadata: { name, labels: want.labels }, spec: want.spec });
  }
  return plan;
}

function sameSpec(a: WorkloadSpec, b: WorkloadSpec): boolean {
  return a.nodeName === b.nodeName && a.app === b.app && a.generation === b.generation
    && JSON.stringify(a.template) === JSON.stringify(b.template)
    && JSON.stringify(a.resolved) === JSON.stringify(b.resolved);
}

/** Labels as one comparable string, independent of key order: has a node's grouping changed? */
export function labelKey(labels: Record<string, string> | undefined): string {
  return JSON.stringify(Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b)));
}
