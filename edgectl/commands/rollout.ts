import type { Command } from 'commander';
import { z } from 'zod';
import type { Rollout } from '../../protocol/index.js';
import { ApiError } from '../client.js';
import { CommandExit, emit, outputOption, type Context } from '../context.js';
import { renderTable, type OutputFormat } from '../format.js';
import { parseName, UsageError } from '../parse.js';
import { historyRows, HISTORY_COLUMNS, rolloutStatusView, TERMINAL_PHASES } from '../rolloutFormat.js';

/**
 * `edgectl rollout …`: watch and steer an app's rollout (docs/rollouts.md). status [-w],
 * history, pause, resume, abort, approve [--wave N], rollback --to-revision N.
 */

interface StatusOpts { output: OutputFormat; watch?: boolean }

const NonNegativeFlag = z.string().regex(/^\d{1,9}$/).transform(Number);
const WaveFlag = z.string().regex(/^[1-9]\d{0,8}$/).transform(Number);

/** `--wave N` counts from 1, as `rollout status` and the dashboard do; the API takes the 0-based index. */
function parseWave(value: string): number {
  const parsed = WaveFlag.safeParse(value);
  if (!parsed.success) throw new UsageError(`invalid --wave "${value}": must be a wave number, 1 or more`);
  return parsed.data - 1;
}

function parseNonNegative(flag: string): (value: string) => number {
  return (value) => {
    const parsed = NonNegativeFlag.safeParse(value);
    if (!parsed.success) throw new UsageError(`invalid ${flag} "${value}": must be a non-negative whole number`);
    return parsed.data;
  };
}

export function registerRollout(program: Command, ctx: Context): void {
  const rollout = program.command('rollout').description("watch and steer an app's rollout: status, history, pause, resume, abort, approve, rollback");

  rollout.command('status')
    .description('show the waves, per-wave node counts and progress; -w follows until the rollout ends')
    .argument('<app>', 'app name')
    .option('-w, --watch', 'follow changes until the rollout Succeeded, Failed, RolledBack or was Aborted (exit code 1 unless Succeeded)')
    .addOption(outputOption())
    .action(async (name: string, opts: StatusOpts, cmd: Command) => {
      const app = parseName(name, 'app');
      const client = ctx.client(cmd);
      const show = (r: Rollout) => emit(ctx, opts.output, r, () => rolloutStatusView(r, ctx.now()));
      const current = await client.getRollout(app);
      show(current);
      if (!opts.watch) return;
      let last = current;
      // Print only on change: for a table, a change of what it shows (writes often move only
      // clocks and assignments, which it does not show); else of the status but updatedAt.
      const shownKey = (r: Rollout) => (opts.output === 'table'
        ? rolloutStatusView(r, new Date(r.status.startedAt))
        : JSON.stringify({ ...r.status, updatedAt: '' }));
      let lastShown = shownKey(current);
      if (!TERMINAL_PHASES.includes(current.status.phase)) {
        await client.watchRollouts((r) => {
          if (r.metadata.name !== app) return false;
          last = r;
          const shown = shownKey(r);
          if (shown !== lastShown) {
            lastShown = shown;
            if (opts.output === 'table') ctx.out('\n');
            show(r);
          }
          return TERMINAL_PHASES.includes(r.status.phase);
        }, current.metadata.resourceVersion);
      }
      if (last.status.phase !== 'Succeeded') throw new CommandExit(1);
    });

  rollout.command('history')
    .description("list the app's revisions, oldest first, with their part in the rollout")
    .argument('<app>', 'app name')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat }, cmd: Command) => {
      const app = parseName(name, 'app');
      const client = ctx.client(cmd);
      const revisions = await client.listRevisions(app);
      const current = await client.getRollout(app).catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 404) return undefined;
        throw err;
      });
      emit(ctx, opts.output, revisions, () => revisions.items.length === 0
        ? 'No revisions yet.\n'
        : renderTable(HISTORY_COLUMNS, historyRows(revisions.items, current, ctx.now())));
    });

  const simple: Array<['pause' | 'resume' | 'abort', string]> = [
    ['pause', 'stop handing the new revision to more nodes (nodes keep what they run)'],
    ['resume', 'carry on with a paused rollout'],
    ['abort', 'end the rollout for good; nodes keep what they run (use rollback to revert)'],
  ];
  for (const [verb, description] of simple) {
    rollout.command(verb)
      .description(description)
      .argument('<app>', 'app name')
      .addOption(outputOption())
      .action(async (name: string, opts: { output: OutputFormat }, cmd: Command) => {
        const r = await ctx.client(cmd).rolloutCommand(parseName(name, 'app'), verb);
        emit(ctx, opts.output, r, () => summary(r));
      });
  }

  rollout.command('approve')
    .description('approve the wave the rollout waits for (or, with --wave, a later wave in advance)')
    .argument('<app>', 'app name')
    .option('--wave <n>', 'wave number (from 1, as in rollout status) to approve', parseWave)
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat; wave?: number }, cmd: Command) => {
      const r = await ctx.client(cmd).rolloutCommand(parseName(name, 'app'), 'approve', opts.wave === undefined ? {} : { wave: opts.wave });
      emit(ctx, opts.output, r, () => summary(r));
    });

  rollout.command('rollback')
    .description('move every node of the app to revision N at once, and mark the revision left bad')
    .argument('<app>', 'app name')
    .requiredOption('--to-revision <n>', 'revision to go back to (see rollout history)', parseNonNegative('--to-revision'))
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat; toRevision: number }, cmd: Command) => {
      const r = await ctx.client(cmd).rolloutCommand(parseName(name, 'app'), 'rollback', { toRevision: opts.toRevision });
      emit(ctx, opts.output, r, () => summary(r));
    });
}

function summary(r: Rollout): string {
  return `rollout of ${r.spec.app}: ${r.status.phase} (revision ${r.status.revision}) - ${r.status.message}\n`;
}
