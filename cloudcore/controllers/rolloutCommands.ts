import type { Rollout, RolloutPhase } from '../../protocol/index.js';
import { describeRollout, type RolloutEventSpec } from './rolloutPlan.js';

/**
 * Pure: operator commands on a rollout (pause, resume, abort, approve, rollback). Each returns
 * the next Rollout and the events to record, or throws RolloutCommandError naming why the
 * rollout's state does not allow it (the API answers 409, or 404 for an unknown revision).
 * The state machine (rolloutPlan.ts) carries on from the new state.
 */

export type RolloutCommand =
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'abort' }
  | { type: 'approve'; wave?: number }
  | { type: 'rollback'; toRevision: number };

export class RolloutCommandError extends Error {
  constructor(message: string, readonly statusCode: 404 | 409 = 409) { super(message); }
}

export interface CommandResult {
  rollout: Rollout;
  events: RolloutEventSpec[];
}

const ACTIVE: readonly RolloutPhase[] = ['Progressing', 'Paused', 'AwaitingApproval'];

/** `subject` names what is rolled out in messages; default `app "<name>"`. */
export function applyRolloutCommand(current: Rollout, command: RolloutCommand, ctx: { revisions: readonly number[]; now: number; subject?: string }): CommandResult {
  const rollout = structuredClone(current);
  const status = rollout.status;
  const subject = ctx.subject ?? `app "${rollout.spec.app}"`;
  const events: RolloutEventSpec[] = [];
  const iso = new Date(ctx.now).toISOString();
  const refuse = (why: string): never => { throw new RolloutCommandError(`cannot ${command.type} the rollout of ${subject}: ${why}`); };

  switch (command.type) {
    case 'pause':
      if (status.phase !== 'Progressing' && status.phase !== 'AwaitingApproval') refuse(`it is ${status.phase}; only a Progressing or AwaitingApproval rollout can be paused`);
      status.phase = 'Paused';
      events.push({ type: 'Normal', reason: 'RolloutPaused', message: `rollout of revision ${status.revision} paused by an operator in wave ${status.wave + 1}` });
      break;
    case 'resume':
      if (status.phase !== 'Paused') refuse(`it is ${status.phase}, not Paused`);
      status.phase = 'Progressing';
      events.push({ type: 'Normal', reason: 'RolloutResumed', message: `rollout of revision ${status.revision} resumed in wave ${status.wave + 1}` });
      break;
    case 'abort':
      if (!ACTIVE.includes(status.phase)) refuse(`it is ${status.phase} already`);
      status.phase = 'Aborted';
      status.finishedAt = iso;
      events.push({ type: 'Warning', reason: 'RolloutAborted', message: `rollout of revision ${status.revision} aborted by an operator in wave ${status.wave + 1}; nodes keep what they run` });
      break;
    case 'approve':
      approve(rollout, command.wave, refuse, events);
      break;
    case 'rollback': {
      const to = command.toRevision;
      if (!ctx.revisions.includes(to)) {
        throw new RolloutCommandError(`cannot rollback the rollout of ${subject}: revision ${to} does not exist (revisions: ${ctx.revisions.join(', ') || 'none'})`, 404);
      }
      if (to === status.revision && (status.phase === 'Succeeded' || status.phase === 'RolledBack')) refuse(`it is ${status.phase} at revision ${to} already`);
      const from = status.revision;
      if (from !== to && !status.badRevisions.includes(from)) status.badRevisions.push(from);
      status.badRevisions = status.badRevisions.filter((r) => r !== to);
      status.revision = to;
      status.stableRevision = to;
      status.phase = 'RolledBack';
      status.readySince = {};
      status.finishedAt = iso;
      events.push({ type: 'Warning', reason: 'RolledBack', message: `an operator rolled ${subject} back from revision ${from} to revision ${to}; every node goes to ${to}` });
      break;
    }
  }
  // The answer describes the state after the command, not the controller's last word before it.
  const c = status.counts;
  status.message = describeRollout(status, c.pending + c.updating + c.healthy + c.failed + c.offline);
  status.updatedAt = iso;
  return { rollout, events };
}

function approve(rollout: Rollout, wave: number | undefined, refuse: (why: string) => never, events: RolloutEventSpec[]): void {
  const status = rollout.status;
  if (!ACTIVE.includes(status.phase)) refuse(`it is ${status.phase}; there is nothing to approve`);
  if (wave === undefined && status.phase !== 'AwaitingApproval') refuse(`it is ${status.phase}, not AwaitingApproval (name a later wave to approve it in advance)`);
  const index = wave ?? status.wave;
  const info = status.waves[index];
  if (!info) refuse(`wave ${index + 1} does not exist (waves 1..${status.waves.length})`);
  if (!info!.approval) refuse(`wave ${index + 1} does not need approval`);
  if (status.approvedWaves.includes(index)) refuse(`wave ${index + 1} is approved already`);
  if (index < status.wave) refuse(`wave ${index + 1} has passed`);
  status.approvedWaves.push(index);
  events.push({ type: 'Normal', reason: 'WaveApproved', message: `wave ${index + 1} of revision ${status.revision} approved by an operator` });
  if (status.phase === 'AwaitingApproval' && index === status.wave) {
    status.phase = 'Progressing';
    events.push({ type: 'Normal', reason: 'WaveStarted', message: `wave ${index + 1} started: up to ${info!.target} node(s) in all` });
  }
}
