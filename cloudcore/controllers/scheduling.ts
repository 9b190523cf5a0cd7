import {
  matchesSelector, workloadName,
  type App, type Node, type Workload, type WorkloadTemplate,
} from '../../protocol/index.js';

/**
 * Pure scheduling: which workloads should exist for a set of apps and nodes, and what must
 * change to get there. An app is bound to every node its selector matches. Node phase is
 * deliberately ignored: an Offline node keeps its workloads (edge autonomy, no eviction).
 */

export type WorkloadSpec = Workload['spec'];

/** Config and secret contents by name, as the store holds them. */
export interface DataObjects {
  configs: ReadonlyMap<string, Record<string, string>>;
  secrets: ReadonlyMap<string, Record<string, string>>;
}

const NO_DATA: DataObjects = { configs: new Map(), secrets: new Map() };

export function desiredWorkloads(apps: App[], nodes: Node[], data: DataObjects = NO_DATA): Map<string, WorkloadSpec> {
  const desired = new Map<string, WorkloadSpec>();
  for (const app of apps) {
    const resolved = resolveData(app.spec.template, data);
    for (const node of nodes) {
      if (!matchesSelector(app.spec.selector, node.metadata.labels)) continue;
      desired.set(workloadName(app.metadata.name, node.metadata.name), {
        nodeName: node.metadata.name,
        app: app.metadata.name,
        generation: app.metadata.generation ?? 1,
        template: app.spec.template,
        ...(resolved ? { resolved } : {}),
      });
    }
  }
  return desired;
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

export function planBindings(desired: Map<string, WorkloadSpec>, existing: Workload[]): BindingPlan {
  const plan: BindingPlan = { create: [], update: [], remove: [] };
  const seen = new Set<string>();
  for (const current of existing) {
    const name = current.metadata.name;
    seen.add(name);
    const spec = desired.get(name);
    if (!spec) plan.remove.push(current);
    else if (!sameSpec(current.spec, spec)) plan.update.push({ ...current, spec });
  }
  for (const [name, spec] of desired) {
    if (!seen.has(name)) plan.create.push({ kind: 'Workload', metadata: { name, labels: { 'edgefleet.io/app': spec.app } }, spec });
  }
  return plan;
}

function sameSpec(a: WorkloadSpec, b: WorkloadSpec): boolean {
  return a.nodeName === b.nodeName && a.app === b.app && a.generation === b.generation
    && JSON.stringify(a.template) === JSON.stringify(b.template)
    && JSON.stringify(a.resolved) === JSON.stringify(b.resolved);
}
