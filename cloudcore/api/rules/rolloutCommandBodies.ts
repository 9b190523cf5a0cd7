import { RolloutApproveBodySchema, RolloutEmptyBodySchema, RolloutRollbackBodySchema } from '../../../protocol/index.js';
import type { RolloutCommand } from '../../controllers/rolloutCommands.js';

/**
 * The operator commands every rollout takes (an app's, an agent upgrade's), one POST route
 * each, with their bodies. Bodies may be empty: `{}` or nothing (fastify hands the validator
 * null then).
 */

const EmptyBody = RolloutEmptyBodySchema.nullish();

export const ROLLOUT_COMMAND_BODIES = {
  pause: EmptyBody,
  resume: EmptyBody,
  abort: EmptyBody,
  approve: RolloutApproveBodySchema.nullish(),
  rollback: RolloutRollbackBodySchema,
} as const;

export type RolloutCommandVerb = keyof typeof ROLLOUT_COMMAND_BODIES;

export function rolloutCommandOf(verb: RolloutCommandVerb, body: { wave?: number; toRevision?: number } | null | undefined): RolloutCommand {
  switch (verb) {
    case 'approve': return body?.wave === undefined ? { type: 'approve' } : { type: 'approve', wave: body.wave };
    case 'rollback': return { type: 'rollback', toRevision: body!.toRevision! };
    default: return { type: verb };
  }
}
