import { z } from 'zod';
import { LabelSelectorSchema } from './labels.js';
import { RolloutPhaseSchema, RolloutStrategySchema, VariantsSchema, type AppRevision, type Rollout } from './rollouts.js';

/**
 * Resources kept in the cloud store and, for node-bound kinds, mirrored on the edge.
 * Shapes follow Kubernetes conventions (metadata/spec/status), which operators coming
 * from kubectl already read.
 */

export { NameSchema, ObjectMetaSchema, type ObjectMeta } from './objectMeta.js';
import { NameSchema, ObjectMetaSchema } from './objectMeta.js';
import { AgentUpgradeStatusSchema, NodeAgentSpecSchema, type AgentUpgrade } from './agentUpgrade.js';

export * from './templates.js';
import { WorkloadTemplateSchema } from './templates.js';
import type { Device, DeviceModel } from './devices.js';
import type { NodeRoute, Route } from './routes.js';

// ---- App: operator-facing, bound to nodes by the scheduler ----------------------------------

export const AppSpecSchema = z.strictObject({
  selector: LabelSelectorSchema.default({}),
  template: WorkloadTemplateSchema,
  /** How a new revision reaches the nodes (docs/rollouts.md); default rolling, maxUnavailable 25%. */
  strategy: RolloutStrategySchema.optional(),
  /** Per-group overrides of the template, by node label selector. */
  variants: VariantsSchema.optional(),
}).superRefine((spec, ctx) => {
  if (spec.template.runtime !== 'process') return;
  for (const [i, v] of (spec.variants ?? []).entries()) {
    for (const field of ['image', 'imageTag', 'resources'] as const) {
      if (v.overrides[field] !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['variants', i, 'overrides', field], message: 'only applies to a container template' });
      }
    }
  }
});

export const AppNodeStateSchema = z.strictObject({
  node: z.string(),
  state: z.string(),
  restarts: z.number().int().nonnegative(),
  lastError: z.string().optional(),
  generation: z.number().int().optional(),
  /** Replica index for replicas after the first (a variant's `replicas`). */
  replica: z.number().int().positive().optional(),
});

/** Nodes that match the same set of variants share one effective template. */
export const AppGroupSchema = z.strictObject({
  /** Matching variant names, applied in this order; empty for the base template. */
  variants: z.array(z.string()),
  nodes: z.array(z.string()),
  replicas: z.number().int().nonnegative(),
  template: WorkloadTemplateSchema,
});

export const AppSchema = z.strictObject({
  kind: z.literal('App'),
  metadata: ObjectMetaSchema,
  spec: AppSpecSchema,
  status: z.strictObject({
    nodes: z.array(AppNodeStateSchema),
    /** Effective spec per group of nodes (variants resolved), derived on read. */
    groups: z.array(AppGroupSchema).optional(),
    /** Revision the app's rollout targets: the newest, or after a rollback the rolled-back-to one (what "up to date" means for a node). */
    revision: z.number().int().positive().optional(),
    /** Summary of the app's Rollout. */
    rollout: z.strictObject({
      phase: RolloutPhaseSchema,
      revision: z.number().int().positive(),
      stableRevision: z.number().int().positive().nullable(),
      message: z.string(),
    }).optional(),
  }).optional(),
});
export type App = z.infer<typeof AppSchema>;

/**
 * A new app's name: a name without ".". Its workloads are named `<app>.<node>` and node names
 * may hold dots (FQDNs), so a dotted app name could take another app's workload name: app
 * `demo.x` on node `edge-1` and app `demo` on node `x.edge-1` are both `demo.x.edge-1`.
 */
export const AppNameSchema = NameSchema.refine((name) => !name.includes('.'),
  'an app name cannot contain "." (its workloads are named <app>.<node>, and node names may contain dots)');

/** The body an operator sends to create or replace an app (kind optional, status ignored). */
export const AppInputSchema = z.strictObject({
  apiVersion: z.string().optional(),
  kind: z.literal('App').optional(),
  metadata: ObjectMetaSchema.extend({ name: AppNameSchema }),
  spec: AppSpecSchema,
  status: z.unknown().optional(),
});
export type AppInput = z.infer<typeof AppInputSchema>;

// ---- Configs and secrets: key → value data used by workloads --------------------------------

export const DataKeySchema = z.string().min(1).max(253).regex(/^[-._a-zA-Z0-9]+$/, 'must be letters, digits, "-", "_" or "."')
  .refine((k) => k !== '.' && k !== '..', 'must not be "." or ".."');
export const DataSchema = z.record(DataKeySchema, z.string())
  .refine((d) => Object.entries(d).reduce((n, [k, v]) => n + k.length + v.length, 0) <= 1024 * 1024, 'data must be at most 1 MiB in all');

export const ConfigSchema = z.strictObject({ kind: z.literal('Config'), metadata: ObjectMetaSchema, data: DataSchema });
export type Config = z.infer<typeof ConfigSchema>;
export const SecretSchema = z.strictObject({ kind: z.literal('Secret'), metadata: ObjectMetaSchema, data: DataSchema });
export type Secret = z.infer<typeof SecretSchema>;

/** Body of POST/PUT for configs and secrets. */
export const DataObjectInputSchema = z.strictObject({
  apiVersion: z.string().optional(),
  kind: z.enum(['Config', 'Secret']).optional(),
  metadata: ObjectMetaSchema,
  data: DataSchema,
});
export type DataObjectInput = z.infer<typeof DataObjectInputSchema>;

// ---- Workload: one app bound to one node; the unit the edge runs ----------------------------

export const WorkloadStateSchema = z.enum(['Pending', 'Running', 'Exited', 'CrashLoop', 'Failed', 'Stopped']);
export type WorkloadState = z.infer<typeof WorkloadStateSchema>;

export const WorkloadStatusSchema = z.strictObject({
  state: WorkloadStateSchema,
  restarts: z.number().int().nonnegative(),
  exitCode: z.number().int().nullable().optional(),
  signal: z.string().nullable().optional(),
  pid: z.number().int().nullable().optional(),
  startedAt: z.string().nullable().optional(),
  finishedAt: z.string().nullable().optional(),
  lastError: z.string().nullable().optional(),
  /** Readiness probe verdict; null when the workload has no readiness probe. */
  ready: z.boolean().nullable().optional(),
  /** Generation of the app template the edge is running. */
  generation: z.number().int().nonnegative(),
  /** `metadata.generation` of the Workload object the edge held when reporting (Kubernetes' observedGeneration). */
  observedGeneration: z.number().int().nonnegative().optional(),
  /** Edge wall-clock time the status was observed. */
  observedAt: z.string(),
});
export type WorkloadStatus = z.infer<typeof WorkloadStatusSchema>;

export const WorkloadSchema = z.strictObject({
  kind: z.literal('Workload'),
  metadata: ObjectMetaSchema,
  spec: z.strictObject({
    nodeName: NameSchema,
    app: NameSchema,
    /** App generation this template came from; the edge reports it back in status. */
    generation: z.number().int().nonnegative(),
    template: WorkloadTemplateSchema,
    /**
     * Contents of the configs and secrets the template refers to, copied in by the scheduler
     * so a change to one rolls the workload and the edge has them offline. The API never
     * shows secret values; the edge keeps them only in its root-only database.
     */
    resolved: z.strictObject({
      configs: z.record(z.string(), DataSchema),
      secrets: z.record(z.string(), DataSchema),
      /** References that do not exist (yet): the edge reports the workload Failed naming them. */
      missing: z.array(z.string()),
    }).optional(),
  }),
  status: WorkloadStatusSchema.optional(),
});
export type Workload = z.infer<typeof WorkloadSchema>;

/** `<app>.<node>`: one name per pair, as app names hold no "." (AppNameSchema). */
export function workloadName(app: string, node: string): string {
  return `${app}.${node}`;
}

// ---- Node -----------------------------------------------------------------------------------

export const NodePhaseSchema = z.enum(['Pending', 'Ready', 'Offline']);
export type NodePhase = z.infer<typeof NodePhaseSchema>;

export const NodeSchema = z.strictObject({
  kind: z.literal('Node'),
  metadata: ObjectMetaSchema,
  spec: z.strictObject({
    /** The agent version an AgentUpgrade asks this node to run (written by the upgrade controller). */
    agent: NodeAgentSpecSchema.optional(),
  }).default({}),
  status: z.strictObject({
    phase: NodePhaseSchema,
    /** When the phase last changed. */
    since: z.string(),
    lastSeen: z.string().nullable(),
    epoch: z.string().nullable(),
    ackedRevision: z.number().int().nonnegative(),
    agent: z.strictObject({
      version: z.string(), os: z.string(), arch: z.string(), hostname: z.string(),
      /** The node's latest agent upgrade attempt, as it reported it. */
      upgrade: AgentUpgradeStatusSchema.optional(),
    }).nullable(),
  }),
});
export type Node = z.infer<typeof NodeSchema>;

/** `PATCH /nodes/{name}`: a merge of labels; a null value removes the label. */
export const NodePatchSchema = z.strictObject({
  metadata: z.strictObject({
    labels: z.record(z.string(), z.string().nullable()),
    resourceVersion: z.number().int().nonnegative().optional(),
  }),
});

// ---- Join tokens and node credentials (kept in the store, never listed by the API) ----------

export const JoinTokenSchema = z.strictObject({
  kind: z.literal('JoinToken'),
  metadata: ObjectMetaSchema,
  spec: z.strictObject({
    node: NameSchema,
    /** sha256 of the secret half; the secret itself is shown once, at creation. */
    secretHash: z.string(),
    expiresAt: z.string(),
  }),
  status: z.strictObject({ usedAt: z.string().nullable() }),
});
export type JoinToken = z.infer<typeof JoinTokenSchema>;

export const TokenRequestSchema = z.strictObject({
  node: NameSchema,
  /** Lifetime in seconds; default one hour, at most 30 days. */
  ttlSeconds: z.number().int().positive().max(30 * 24 * 3600).default(3600),
});

export const NodeCredentialSchema = z.strictObject({
  kind: z.literal('NodeCredential'),
  metadata: ObjectMetaSchema,
  spec: z.strictObject({
    node: NameSchema,
    /** sha256 of a bearer credential (plain-HTTP links only); absent once the node holds certificates. */
    secretHash: z.string().optional(),
    issuedAt: z.string(),
    /** When the bearer credential stops being accepted; a renewal moves it. */
    expiresAt: z.string().optional(),
    /** The bearer credential a renewal replaced, accepted until its own expiry (the edge may not have committed the new one). */
    previousSecretHash: z.string().optional(),
    previousExpiresAt: z.string().optional(),
    /**
     * The node's certificates still accepted (serial hex, lower case; notAfter ISO): an allow-list
     * in the shared store. A certificate whose serial is not here is refused, however well it is
     * signed, so removing an entry (or the whole object) revokes it on every replica at once.
     */
    certificates: z.array(z.strictObject({ serial: z.string().regex(/^[0-9a-f]+$/), notAfter: z.string() })).max(16).default([]),
  }),
});
export type NodeCredential = z.infer<typeof NodeCredentialSchema>;

/** Operator roles: admin may do everything, readonly only GET (docs/api.md). */
export const OperatorRoleSchema = z.enum(['admin', 'readonly']);
export type OperatorRole = z.infer<typeof OperatorRoleSchema>;

/**
 * A named operator bearer token (`edgectl token operator create alice`): the name ties each
 * audited action to a person. The token is `efo_<id>.<secret>`, shown once; only a sha256 of
 * the secret is stored. Revoking deletes the object. Never listed with its hash.
 */
export const OperatorTokenSchema = z.strictObject({
  kind: z.literal('OperatorToken'),
  metadata: ObjectMetaSchema,
  spec: z.strictObject({
    /** Public half of the token, named in the audit log. */
    id: z.string().regex(/^[0-9a-f]{12}$/),
    role: OperatorRoleSchema,
    secretHash: z.string(),
    /** Every named token expires (at most a year after creation): least privilege by default. */
    expiresAt: z.string(),
  }),
  status: z.strictObject({ lastUsedAt: z.string().nullable() }),
});
export type OperatorToken = z.infer<typeof OperatorTokenSchema>;

// ---- Events reported by edges ---------------------------------------------------------------

export const EdgeEventSchema = z.strictObject({
  reason: z.string().max(128),
  message: z.string().max(4096),
  type: z.enum(['Normal', 'Warning']),
  workload: z.string().optional(),
  time: z.string(),
});
export type EdgeEvent = z.infer<typeof EdgeEventSchema>;

export const EventSchema = z.strictObject({
  kind: z.literal('Event'),
  metadata: ObjectMetaSchema,
  /** `node` for events an edge reported; `app` (and no node) for the cloud's rollout events; `upgrade` for an AgentUpgrade's. */
  spec: EdgeEventSchema.extend({ node: NameSchema.optional(), app: NameSchema.optional(), upgrade: NameSchema.optional() }),
});
export type Event = z.infer<typeof EventSchema>;

export type AnyObject = App | Workload | Node | JoinToken | NodeCredential | Event | Config | Secret | DeviceModel | Device | AppRevision | Rollout | OperatorToken | AgentUpgrade | Route | NodeRoute;
export type Kind = AnyObject['kind'];
export const KINDS: readonly Kind[] = ['App', 'Workload', 'Node', 'JoinToken', 'NodeCredential', 'Event', 'Config', 'Secret', 'DeviceModel', 'Device', 'AppRevision', 'Rollout', 'OperatorToken', 'AgentUpgrade', 'Route', 'NodeRoute'];
