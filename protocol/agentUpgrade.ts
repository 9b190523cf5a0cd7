import { z } from 'zod';
import { ReleaseVersionSchema } from './dist.js';
import { LabelSelectorSchema } from './labels.js';
import { NameSchema, ObjectMetaSchema } from './objectMeta.js';
import { RolloutStatusSchema, RolloutStrategySchema } from './rollouts.js';

/**
 * Over-the-air upgrades of the edge agent itself (docs/install.md, "Upgrade"). The operator's
 * AgentUpgrade is rolled out by the same state machine as an app (waves, thresholds, pause,
 * approve, abort); each targeted node is told its desired agent version with an `agentUpgrade`
 * frame and answers with `agentStatus` frames as its upgrade moves on.
 */

/** A release version: one rule for releases served under /dist and agent upgrades (protocol/dist.ts). */
export const AgentVersionSchema = ReleaseVersionSchema;

/**
 * Where an upgrade stands on the node. Downloading → Verifying → Installing → Restarting →
 * Checking → Committed; Failed = it stopped before the switch (the old agent kept running);
 * RolledBack = the new agent crashed, could not link or did not come healthy, and the node went
 * back to its previous version by itself.
 */
export const AgentUpgradePhaseSchema = z.enum([
  'Downloading', 'Verifying', 'Installing', 'Restarting', 'Checking', 'Committed', 'Failed', 'RolledBack',
]);
export type AgentUpgradePhase = z.infer<typeof AgentUpgradePhaseSchema>;
export const FINAL_AGENT_UPGRADE_PHASES: readonly AgentUpgradePhase[] = ['Committed', 'Failed', 'RolledBack'];

export const AgentUpgradeStatusSchema = z.strictObject({
  /** The AgentUpgrade and revision this attempt answers. */
  upgrade: NameSchema,
  revision: z.number().int().positive(),
  /** The version being installed. */
  version: AgentVersionSchema,
  /** The version the node ran before (what a rollback returns to). */
  previousVersion: AgentVersionSchema.optional(),
  phase: AgentUpgradePhaseSchema,
  message: z.string().max(1024),
  /** Downloading: bytes held so far of `totalBytes`. */
  bytes: z.number().int().nonnegative().optional(),
  totalBytes: z.number().int().nonnegative().optional(),
  /** When the phase was entered (ISO time). */
  since: z.string().max(64),
});
export type AgentUpgradeStatus = z.infer<typeof AgentUpgradeStatusSchema>;

/**
 * cloud → edge: the agent version this node should run. Sent after every welcome while the node
 * has one, and whenever it changes. `file`, `sha256` and `size` name the artefact for the node's
 * architecture in `GET /dist/<version>/` (absent: the cloud has none, and the edge reports
 * Failed). The edge still checks the signed SHA256SUMS itself. A version equal to the running
 * one asks for nothing (and calls off an attempt not yet switched).
 */
export const AgentUpgradeFrameSchema = z.strictObject({
  type: z.literal('agentUpgrade'),
  upgrade: NameSchema,
  revision: z.number().int().positive(),
  version: AgentVersionSchema,
  file: z.string().max(255).regex(/^[A-Za-z0-9._+-]+$/, 'must be a file name').optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits').optional(),
  size: z.number().int().positive().optional(),
});
export type AgentUpgradeFrame = z.infer<typeof AgentUpgradeFrameSchema>;

// ---- AgentUpgrade: the operator's request, with its rollout state ----------------------------

/** One version an AgentUpgrade has asked for; revision 1 is always the baseline (each node's own version). */
export const AgentUpgradeRevisionSchema = z.strictObject({
  revision: z.number().int().positive(),
  /** null: the baseline, the version each node ran when the upgrade first reached it. */
  version: AgentVersionSchema.nullable(),
});

export const AgentUpgradeSpecSchema = z.strictObject({
  version: AgentVersionSchema,
  selector: LabelSelectorSchema,
  strategy: RolloutStrategySchema.optional(),
  /** Versions asked for so far, oldest first (kept by the API; the last is `version`). */
  revisions: z.array(AgentUpgradeRevisionSchema).min(2).max(32),
});
export type AgentUpgradeSpec = z.infer<typeof AgentUpgradeSpecSchema>;

export const AgentUpgradeSchema = z.strictObject({
  kind: z.literal('AgentUpgrade'),
  metadata: ObjectMetaSchema,
  spec: AgentUpgradeSpecSchema,
  /** The rollout state (same machine as an app's Rollout); absent until the controller first ran. */
  status: RolloutStatusSchema.optional(),
});
export type AgentUpgrade = z.infer<typeof AgentUpgradeSchema>;

/** `POST /api/v1/agent-upgrades` and `PUT /api/v1/agent-upgrades/{name}`. */
export const AgentUpgradeRequestSchema = z.strictObject({
  name: NameSchema.optional(),
  version: AgentVersionSchema,
  selector: LabelSelectorSchema.optional(),
  strategy: RolloutStrategySchema.optional(),
});
export type AgentUpgradeRequest = z.infer<typeof AgentUpgradeRequestSchema>;

/** What the cloud last told a node to run (Node.spec.agent), written by the upgrade controller. */
export const NodeAgentSpecSchema = z.strictObject({
  upgrade: NameSchema,
  revision: z.number().int().positive(),
  version: AgentVersionSchema,
  /** The version the node ran when this upgrade first reached it: the baseline revision's version. */
  baseline: AgentVersionSchema,
});
export type NodeAgentSpec = z.infer<typeof NodeAgentSpecSchema>;
