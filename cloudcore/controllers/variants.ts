import {
  matchesSelector,
  type AppGroupSchema, type Labels, type Variant, type VariantOverrides, type WorkloadTemplate,
} from '../../protocol/index.js';
import type { z } from 'zod';

/**
 * Pure: the template a node runs, from an app revision's template and the variants whose
 * selectors match the node's labels. Variants apply lowest priority first (ties by name), so
 * the highest priority wins where two set the same thing.
 */

export interface EffectiveSpec {
  template: WorkloadTemplate;
  /** Workloads of the app on the node (1 unless a variant says otherwise). */
  replicas: number;
  /** Names of the variants applied, in order. */
  variants: string[];
}

export type AppGroup = z.infer<typeof AppGroupSchema>;

/** Variants in the order they apply. */
export function orderedVariants(variants: readonly Variant[]): Variant[] {
  return [...variants].sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function matchingVariants(variants: readonly Variant[], labels: Labels | undefined): Variant[] {
  return orderedVariants(variants).filter((v) => matchesSelector(v.selector, labels));
}

/** Replaces the tag of an image reference, keeping its registry and path and dropping a digest. */
export function withImageTag(image: string, tag: string): string {
  const withoutDigest = image.split('@')[0]!;
  const slash = withoutDigest.lastIndexOf('/');
  const lastSegment = withoutDigest.slice(slash + 1);
  const colon = lastSegment.indexOf(':');
  const repository = colon === -1 ? withoutDigest : withoutDigest.slice(0, slash + 1 + colon);
  return `${repository}:${tag}`;
}

export function applyOverrides(template: WorkloadTemplate, overrides: VariantOverrides): WorkloadTemplate {
  const env = overrides.env ? { ...template.env, ...overrides.env } : template.env;
  if (template.runtime === 'process') return { ...template, env };
  let image = overrides.image ?? template.image;
  if (overrides.imageTag !== undefined) image = withImageTag(image, overrides.imageTag);
  const resources = overrides.resources ? { ...template.resources, ...overrides.resources } : template.resources;
  return { ...template, env, image, resources };
}

export function effectiveSpec(template: WorkloadTemplate, variants: readonly Variant[], labels: Labels | undefined): EffectiveSpec {
  let effective = template;
  let replicas = 1;
  const applied: string[] = [];
  for (const variant of matchingVariants(variants, labels)) {
    effective = applyOverrides(effective, variant.overrides);
    if (variant.overrides.replicas !== undefined) replicas = variant.overrides.replicas;
    applied.push(variant.name);
  }
  return { template: effective, replicas, variants: applied };
}

/** The template of each replica: replica i gets EF_REPLICA=i when there is more than one. */
export function replicaTemplates(spec: EffectiveSpec): WorkloadTemplate[] {
  if (spec.replicas <= 1) return [spec.template];
  return Array.from({ length: spec.replicas }, (_, i) => ({ ...spec.template, env: { ...spec.template.env, EF_REPLICA: String(i) } }));
}

/**
 * Nodes grouped by the variants that match them, each group with its effective spec: what
 * `edgectl get app NAME -o yaml` shows. The base group (no variant) is always listed.
 */
export function appGroups(template: WorkloadTemplate, variants: readonly Variant[], nodes: readonly { name: string; labels: Labels | undefined }[]): AppGroup[] {
  const groups = new Map<string, AppGroup>();
  const base = effectiveSpec(template, [], undefined);
  groups.set('', { variants: [], nodes: [], replicas: base.replicas, template: base.template });
  for (const node of nodes) {
    const spec = effectiveSpec(template, variants, node.labels);
    const key = spec.variants.join(',');
    let group = groups.get(key);
    if (!group) {
      group = { variants: spec.variants, nodes: [], replicas: spec.replicas, template: spec.template };
      groups.set(key, group);
    }
    group.nodes.push(node.name);
  }
  return [...groups.values()].sort((a, b) => a.variants.length - b.variants.length || a.variants.join(',').localeCompare(b.variants.join(',')));
}
