import type { Command } from 'commander';
import {
  AgentVersionSchema, CountOrPercentSchema, RolloutStrategySchema, SelectorSyntaxError, parseSelectorString,
  type AgentUpgrade, type Node, type Rollout, type RolloutStrategy, type WaveSpec,
} from '../../protocol/index.js';
import { CommandExit, emit, outputOption, type Context } from '../context.js';
import { oneLine, renderTable, type OutputFormat, type Row } from '../format.js';
import { parseName, UsageError } from '../parse.js';
import { rolloutStatusView, TERMINAL_PHASES } from '../rolloutFormat.js';

/**
 * `edgectl upgrade`: over-the-air upgrades of the edge agent (docs/install.md, "Upgrade"),
 * rolled out like an app (waves, thresholds, pause, approve, abort, rollback).
 *
 *   edgectl upgrade --to 0.2.0 [--selector zone=north] [--waves 10%,100%] [--auto-rollback] …
 *   edgectl upgrade status [NAME] [-w] · list · pause|resume|abort NAME · approve NAME [--wave N]
 *   edgectl upgrade rollback NAME --to-revision N     (revision 1 = each node's own version)
 */

interface UpgradeOpts {
  to?: string;
  selector?: string;
  name?: string;
  waves?: string;
  maxUnavailable?: string;
  failureThreshold?: string;
  minReadySeconds?: string;
  autoRollback?: boolean;
  approveEachWave?: boolean;
  output: OutputFormat;
}

const DEFAULT_NAME = 'edge-agent';

/** The strategy the flags describe (zod-checked, so a bad one is named before anything is sent). */
export function strategyFromFlags(opts: UpgradeOpts): RolloutStrategy | undefined {
  const strategy: Record<string, unknown> = {};
  if (opts.waves !== undefined) {
    const waves: WaveSpec[] = opts.waves.split(',').map((w) => w.trim()).map((w): WaveSpec => {
      const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(w);
      if (percent) return { percent: Number(percent[1]), ...(opts.approveEachWave ? { approval: true } : {}) };
      if (/^[1-9]\d{0,8}$/.test(w)) return { count: Number(w), ...(opts.approveEachWave ? { approval: true } : {}) };
      throw new UsageError(`invalid --waves entry "${w}": each wave is a node count (2) or a percent of the fleet (10%); the last must be 100%`);
    });
    // The first wave needs no approval: the operator just asked for it.
    if (waves[0]) delete waves[0].approval;
    Object.assign(strategy, { type: 'waves', waves });
  }
  const countOrPercent = (flag: string, value: string) => {
    const parsed = CountOrPercentSchema.safeParse(/^\d+$/.test(value) ? Number(value) : value);
    if (!parsed.success) throw new UsageError(`invalid ${flag} "${value}": must be a count like 2 or a percent like "10%"`);
    return parsed.data;
  };
  if (opts.maxUnavailable !== undefined) strategy.maxUnavailable = countOrPercent('--max-unavailable', opts.maxUnavailable);
  if (opts.failureThreshold !== undefined) strategy.failureThreshold = countOrPercent('--failure-threshold', opts.failureThreshold);
  if (opts.minReadySeconds !== undefined) {
    if (!/^\d{1,9}$/.test(opts.minReadySeconds)) throw new UsageError(`invalid --min-ready-seconds "${opts.minReadySeconds}": must be whole seconds`);
    strategy.minReadySeconds = Number(opts.minReadySeconds);
  }
  if (opts.autoRollback) strategy.autoRollback = true;
  if (Object.keys(strategy).length === 0) return undefined;
  const parsed = RolloutStrategySchema.safeParse(strategy);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(`invalid strategy: ${issue.path.join('.') || 'strategy'}: ${issue.message}`);
  }
  return parsed.data;
}

/** The upgrade's status as the shared rollout view shows it. */
function asRollout(u: AgentUpgrade): Rollout | undefined {
  return u.status ? { kind: 'Rollout', metadata: u.metadata, spec: { app: u.metadata.name }, status: u.status } : undefined;
}

export function upgradeView(u: AgentUpgrade, nodes: readonly Node[], now: Date): string {
  const revisions = u.spec.revisions.map((r) => `${r.revision}=${r.version ?? 'baseline'}`).join(' ');
  const head = `Agent upgrade ${u.metadata.name}: version ${u.spec.version} (revisions ${revisions})\n`;
  const rollout = asRollout(u);
  const body = rollout ? rolloutStatusView(rollout, now).replace(/^App: {4}/m, 'Upgrade:') : 'Not started yet (the controller steps it within a second).\n';
  const mine = nodes.filter((n) => n.spec.agent?.upgrade === u.metadata.name);
  if (mine.length === 0) return head + body;
  const rows: Row[] = mine.map((n) => {
    const a = n.status.agent;
    const attempt = a?.upgrade?.upgrade === u.metadata.name ? a.upgrade : undefined;
    return [n.metadata.name, n.status.phase, a?.version ?? '-', n.spec.agent!.version, attempt ? `${attempt.phase} (r${attempt.revision})` : '-', oneLine(attempt?.message ?? '', 70)];
  });
  return head + body + '\n' + renderTable(['NODE', 'PHASE', 'RUNNING', 'WANTED', 'ATTEMPT', 'MESSAGE'], rows);
}

function summary(u: AgentUpgrade): string {
  return `agentupgrade/${u.metadata.name}: version ${u.spec.version}${u.status ? `, ${u.status.phase}: ${u.status.message}` : ' (starting)'}\n`;
}

export function registerUpgrade(program: Command, ctx: Context): void {
  const upgrade = program.command('upgrade')
    .description('upgrade the edge agent on nodes, rolled out in waves like an app: --to VERSION; status, list, pause, resume, abort, approve, rollback')
    .option('--to <version>', 'agent version to run (one cloudcore serves under /dist)')
    .option('--selector <labels>', 'nodes to upgrade, as a label selector (zone=north,tier in (a,b)); default every node')
    .option('--name <name>', `name of the upgrade (default ${DEFAULT_NAME}: a new --to gives it a new version)`)
    .option('--waves <list>', 'cumulative waves: node counts or percents, the last 100% (e.g. 1,50%,100%)')
    .option('--approve-each-wave', 'every wave after the first waits for `edgectl upgrade approve`')
    .option('--max-unavailable <n>', 'nodes upgrading at once: a count or a percent (default 25%)')
    .option('--failure-threshold <n>', 'failed nodes (count or percent) that stop the upgrade (default 0)')
    .option('--min-ready-seconds <n>', 'a node counts healthy once its new agent was healthy this long (default 0)')
    .option('--auto-rollback', 'when the threshold trips, nodes that took the version go back to their own previous one')
    .addOption(outputOption())
    .action(async (opts: UpgradeOpts, cmd: Command) => {
      if (!opts.to) throw new UsageError('say which version: edgectl upgrade --to VERSION (or a subcommand: status, list, pause, resume, abort, approve, rollback)');
      const version = AgentVersionSchema.safeParse(opts.to);
      if (!version.success) throw new UsageError(`invalid --to "${opts.to}": ${version.error.issues[0]!.message}`);
      let selector;
      try {
        selector = opts.selector === undefined ? undefined : parseSelectorString(opts.selector);
      } catch (err) {
        if (err instanceof SelectorSyntaxError) throw new UsageError(`invalid --selector: ${err.message}`);
        throw err;
      }
      const strategy = strategyFromFlags(opts);
      const u = await ctx.client(cmd).requestAgentUpgrade({
        version: version.data, ...(opts.name ? { name: parseName(opts.name, 'upgrade') } : {}),
        ...(selector ? { selector } : {}), ...(strategy ? { strategy } : {}),
      });
      emit(ctx, opts.output, u, () => summary(u) + `follow it with: edgectl upgrade status ${u.metadata.name} -w\n`);
    });

  upgrade.command('status')
    .description('the upgrade\'s waves, counts and each node\'s attempt; -w follows until it ends')
    .argument('[name]', 'upgrade name', DEFAULT_NAME)
    .option('-w, --watch', 'follow until Succeeded, Failed, RolledBack or Aborted (exit code 1 unless Succeeded)')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat; watch?: boolean }, cmd: Command) => {
      const client = ctx.client(cmd);
      const show = async (u: AgentUpgrade) => {
        const nodes = opts.output === 'table' ? (await client.listNodes()).items : [];
        emit(ctx, opts.output, u, () => upgradeView(u, nodes, ctx.now()));
      };
      const current = await client.getAgentUpgrade(parseName(name, 'upgrade'));
      await show(current);
      if (!opts.watch) return;
      let last = current;
      const ended = (u: AgentUpgrade) => u.status !== undefined && TERMINAL_PHASES.includes(u.status.phase);
      if (!ended(current)) {
        let lastPhase = current.status?.phase;
        await client.watchAgentUpgrades((u) => {
          if (u.metadata.name !== current.metadata.name) return false;
          last = u;
          if (u.status?.phase !== lastPhase || ended(u)) {
            lastPhase = u.status?.phase;
            ctx.out(summary(u));
          }
          return ended(u);
        }, current.metadata.resourceVersion);
        if (opts.output === 'table') await show(last);
      }
      if (last.status?.phase !== 'Succeeded') throw new CommandExit(1);
    });

  upgrade.command('list')
    .description('every agent upgrade with its phase')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, cmd: Command) => {
      const list = await ctx.client(cmd).listAgentUpgrades();
      emit(ctx, opts.output, list, () => list.items.length === 0 ? 'No agent upgrades.\n' : renderTable(['NAME', 'VERSION', 'PHASE', 'MESSAGE'],
        list.items.map((u) => [u.metadata.name, u.spec.version, u.status?.phase ?? '-', oneLine(u.status?.message ?? '', 80)])));
    });

  const simple: Array<['pause' | 'resume' | 'abort', string]> = [
    ['pause', 'hand the version to no more nodes (nodes keep what they run)'],
    ['resume', 'carry on with a paused upgrade'],
    ['abort', 'end the upgrade for good; nodes keep what they run (use rollback to revert)'],
  ];
  for (const [verb, description] of simple) {
    upgrade.command(verb).description(description)
      .argument('[name]', 'upgrade name', DEFAULT_NAME)
      .addOption(outputOption())
      .action(async (name: string, opts: { output: OutputFormat }, cmd: Command) => {
        const u = await ctx.client(cmd).agentUpgradeCommand(parseName(name, 'upgrade'), verb);
        emit(ctx, opts.output, u, () => summary(u));
      });
  }

  upgrade.command('approve').description('approve the wave the upgrade waits for (or, with --wave, a later one)')
    .argument('[name]', 'upgrade name', DEFAULT_NAME)
    .option('--wave <n>', 'wave number (from 1) to approve')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat; wave?: string }, cmd: Command) => {
      if (opts.wave !== undefined && !/^[1-9]\d{0,8}$/.test(opts.wave)) throw new UsageError(`invalid --wave "${opts.wave}": must be a wave number, 1 or more`);
      const u = await ctx.client(cmd).agentUpgradeCommand(parseName(name, 'upgrade'), 'approve', opts.wave === undefined ? {} : { wave: Number(opts.wave) - 1 });
      emit(ctx, opts.output, u, () => summary(u));
    });

  upgrade.command('rollback').description('move every node of the upgrade to revision N at once (1 = each node\'s own previous version)')
    .argument('[name]', 'upgrade name', DEFAULT_NAME)
    .requiredOption('--to-revision <n>', 'revision to go back to (see upgrade status)')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat; toRevision: string }, cmd: Command) => {
      if (!/^[1-9]\d{0,8}$/.test(opts.toRevision)) throw new UsageError(`invalid --to-revision "${opts.toRevision}": must be a revision number, 1 or more`);
      const u = await ctx.client(cmd).agentUpgradeCommand(parseName(name, 'upgrade'), 'rollback', { toRevision: Number(opts.toRevision) });
      emit(ctx, opts.output, u, () => summary(u));
    });
}
