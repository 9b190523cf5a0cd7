import { z } from 'zod';
import { LabelSelectorSchema } from './labels.js';
import { NameSchema, ObjectMetaSchema } from './objectMeta.js';
import { ContainerTemplateSchema, EnvNameSchema, ResourceLimitsSchema, WorkloadTemplateSchema } from './templates.js';

/**
 * Fleet rollouts (docs/rollouts.md): how an app's new revision reaches its nodes (strategy),
 * per-group overrides (variants), the immutable revisions themselves (AppRevision) and the
 * persisted state of the rollout controller (Rollout). Schemas only; the logic lives in
 * cloudcore/controllers/ (variants.ts, rolloutPlan.ts).
 */

// ---- counts and percents --------------------------------------------------------------------

const percentText = z.string().regex(/^\d{1,3}(\.\d+)?%$/, 'must be a count like 2 or a percent like "10%"')
  .refine((p) => Number.parseFloat(p) <= 100, 'must be at most 100%');

/** A node count or a percent string ("10%"). */
export const CountOrPercentSchema = z.union([z.number().int().nonnegative(), percentText]);
export type CountOrPercent = z.infer<typeof CountOrPercentSchema>;

/** maxUnavailable: at least one node must be allowed to update. */
const PositiveCountOrPercent = z.union([z.number().int().positive(), percentText.refine((p) => Number.parseFloat(p) > 0, 'must be more than 0%')]);

// ---- strategy -------------------------------------------------------------------------------

/** One wave: a cumulative target (percent of the targeted fleet, or a node count) and its gate. */
export const WaveSpecSchema = z.strictObject({
  percent: z.number().gt(0).max(100).optional(),
  count: z.number().int().positive().optional(),
  /** An operator must approve (POST .../rollout/approve) before this wave starts. */
  approval: z.boolean().optional(),
  /** Overrides the strategy's minReadySeconds for this wave's gate. */
  minReadySeconds: z.number().int().min(0).max(7 * 24 * 3600).optional(),
  /** Overrides the strategy's failureThreshold while this wave runs. */
  failureThreshold: CountOrPercentSchema.optional(),
}).refine((w) => (w.percent === undefined) !== (w.count === undefined), { message: 'set exactly one of percent or count' });
export type WaveSpec = z.infer<typeof WaveSpecSchema>;

export const RolloutStrategySchema = z.strictObject({
  type: z.enum(['rolling', 'waves']).optional(),
  /** Nodes updating at once: a count or a percent of the targeted fleet (rounded up, at least 1). Default "25%" for rolling; unlimited inside a wave for waves. */
  maxUnavailable: PositiveCountOrPercent.optional(),
  /** type waves only: cumulative targets; the last must be {percent: 100}. */
  waves: z.array(WaveSpecSchema).min(1).max(20).optional(),
  /** A node counts healthy once it ran the new revision Running (ready not false) this long. Default 0. */
  minReadySeconds: z.number().int().min(0).max(7 * 24 * 3600).optional(),
  /** The rollout stops when more nodes than this failed on the new revision (count, or percent of the nodes updated so far). Default 0. */
  failureThreshold: CountOrPercentSchema.optional(),
  /** On a trip, every node that got the bad revision goes back to the last good one. Default false. */
  autoRollback: z.boolean().optional(),
  /** Nodes not seen for this long are not waited for. Default 300. */
  offlineWindowSeconds: z.number().int().min(0).max(30 * 24 * 3600).optional(),
}).superRefine((s, ctx) => {
  if (s.type === 'waves') {
    if (!s.waves) { ctx.addIssue({ code: 'custom', path: ['waves'], message: 'is required when type is waves' }); return; }
    const last = s.waves[s.waves.length - 1]!;
    if (last.percent !== 100) ctx.addIssue({ code: 'custom', path: ['waves', s.waves.length - 1, 'percent'], message: 'the last wave must be {percent: 100}' });
  } else if (s.waves) {
    ctx.addIssue({ code: 'custom', path: ['waves'], message: 'is only allowed when type is waves' });
  }
});
export type RolloutStrategy = z.infer<typeof RolloutStrategySchema>;

// ---- variants -------------------------------------------------------------------------------

export const VariantOverridesSchema = z.strictObject({
  /** Container only: replaces the tag of the template's image. */
  imageTag: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'must be an image tag like "1.2.3"').optional(),
  /** Container only: replaces the whole image reference. */
  image: ContainerTemplateSchema.shape.image.optional(),
  /** Merged over the template's env (these values win). */
  env: z.record(EnvNameSchema, z.string()).optional(),
  /** Workloads of this app per node (default 1); each gets EF_REPLICA=<i> when more than one. */
  replicas: z.number().int().min(1).max(16).optional(),
  /** Container only: merged over the template's resources. */
  resources: ResourceLimitsSchema.optional(),
});
export type VariantOverrides = z.infer<typeof VariantOverridesSchema>;

export const VariantSchema = z.strictObject({
  name: NameSchema,
  /** Default 0. Applied lowest priority first, so the highest priority wins; ties by name. */
  priority: z.number().int().min(-1000000).max(1000000).optional(),
  selector: LabelSelectorSchema,
  overrides: VariantOverridesSchema,
});
export type Variant = z.infer<typeof VariantSchema>;

export const VariantsSchema = z.array(VariantSchema).max(64)
  .refine((vs) => new Set(vs.map((v) => v.name)).size === vs.length, 'variant names must be unique');

// ---- AppRevision: immutable, one per change of template or variants --------------------------

export const AppRevisionSchema = z.strictObject({
  kind: z.literal('AppRevision'),
  /** name: `${app}.r${revision}`. */
  metadata: ObjectMetaSchema,
  spec: z.strictObject({
    app: NameSchema,
    /** The App's metadata.generation when its template or variants changed to this. */
    revision: z.number().int().positive(),
    template: WorkloadTemplateSchema,
    variants: z.array(VariantSchema),
  }),
});
export type AppRevision = z.infer<typeof AppRevisionSchema>;

export function appRevisionName(app: string, revision: number): string {
  return `${app}.r${revision}`;
}

// ---- Rollout: the controller's whole state, one per app (name = app name) --------------------

export const RolloutPhaseSchema = z.enum(['Progressing', 'Paused', 'AwaitingApproval', 'Succeeded', 'Failed', 'RolledBack', 'Aborted']);
export type RolloutPhase = z.infer<typeof RolloutPhaseSchema>;
export const TERMINAL_ROLLOUT_PHASES: readonly RolloutPhase[] = ['Succeeded', 'Failed', 'RolledBack', 'Aborted'];

export const NodeCountsSchema = z.strictObject({
  pending: z.number().int().nonnegative(),
  updating: z.number().int().nonnegative(),
  healthy: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  offline: z.number().int().nonnegative(),
});
export type NodeCounts = z.infer<typeof NodeCountsSchema>;

export const WaveStatusSchema = z.strictObject({
  index: z.number().int().nonnegative(),
  /** Cumulative node count the fleet reaches when this wave is done. */
  target: z.number().int().nonnegative(),
  /** Nodes in this wave (target minus the previous wave's target). */
  size: z.number().int().nonnegative(),
  /** Stopped: the rollout ended (failed, aborted, rolled back) while this wave ran. */
  state: z.enum(['Waiting', 'AwaitingApproval', 'Progressing', 'Passed', 'Stopped']),
  approval: z.boolean(),
  approved: z.boolean(),
  /** Counts of this wave's nodes against the rollout's target revision. */
  counts: NodeCountsSchema,
});
export type WaveStatus = z.infer<typeof WaveStatusSchema>;

export const RolloutStatusSchema = z.strictObject({
  phase: RolloutPhaseSchema,
  /** The revision being rolled out (or rolled back to). */
  revision: z.number().int().positive(),
  /** Last revision that completed a rollout; null before the first one did. */
  stableRevision: z.number().int().positive().nullable(),
  /** Newest AppRevision the controller has acted on; a newer one starts a new rollout. */
  observedRevision: z.number().int().positive(),
  /** Index of the current wave. */
  wave: z.number().int().nonnegative(),
  waves: z.array(WaveStatusSchema),
  /** Whole targeted fleet against `revision`. */
  counts: NodeCountsSchema,
  /** maxUnavailable resolved to a node count for the current fleet. */
  maxUnavailable: z.number().int().positive(),
  message: z.string(),
  /** Revisions that were rolled back: never assigned to a node again by this rollout. */
  badRevisions: z.array(z.number().int().positive()),
  /** Waves an operator approved (indexes), kept apart so a strategy edit cannot lose them. */
  approvedWaves: z.array(z.number().int().nonnegative()),
  /**
   * Assignments not yet written into the node's Workloads (node → revision). The scheduler
   * applies them; the controller drops an entry once the Workload carries it. A node's
   * assigned revision is otherwise its Workload's spec.generation.
   */
  assignments: z.record(z.string(), z.number().int().positive()),
  /** When the controller first saw a node Running and ready on `revision` (ms since epoch); drives minReadySeconds. */
  readySince: z.record(z.string(), z.number().int().nonnegative()),
  startedAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
});
export type RolloutStatus = z.infer<typeof RolloutStatusSchema>;

export const RolloutSchema = z.strictObject({
  kind: z.literal('Rollout'),
  /** name = the app's name. */
  metadata: ObjectMetaSchema,
  /** appUid: the App's uid, so a deleted and re-created app starts over. */
  spec: z.strictObject({ app: NameSchema, appUid: z.string().optional() }),
  status: RolloutStatusSchema,
});
export type Rollout = z.infer<typeof RolloutSchema>;

// ---- REST bodies ----------------------------------------------------------------------------

export const RolloutApproveBodySchema = z.strictObject({ wave: z.number().int().nonnegative().optional() });
export const RolloutRollbackBodySchema = z.strictObject({ toRevision: z.number().int().positive() });
export const RolloutEmptyBodySchema = z.strictObject({});
