import { Option, type Command } from 'commander';
import { AUDIT_COLUMNS, auditRow } from '../auditFormat.js';
import { emit, outputOption, type Context } from '../context.js';
import { renderTable, type OutputFormat } from '../format.js';
import { parseLimit, parseName, parseSince, UsageError } from '../parse.js';

interface AuditOptions {
  since?: string; until?: string; verb?: string; kind?: string; name?: string; user?: string; limit: number; output: OutputFormat;
}

/** `edgectl audit`: who did what, from cloudcore's audit log (admin tokens only). */
export function registerAudit(program: Command, ctx: Context): void {
  program.command('audit')
    .description('show cloudcore\'s audit log: writes, exec, logs and refused attempts, with who made them (needs an admin token)')
    .option('--since <when>', 'from this time: a span back from now (15m, 2h, 7d) or an ISO time')
    .option('--until <when>', 'before this time: a span back from now or an ISO time')
    .option('--verb <verb>', 'only this verb: create, update, patch, delete, exec, logs, pause, …')
    .option('--kind <kind>', 'only objects of this kind: node, app, secret, workload, operatortoken, …')
    .option('--name <name>', 'only this object (or the objects on this node)')
    .option('--user <token>', 'only requests made with this token name or id (bootstrap-admin, alice, …)')
    .addOption(new Option('--limit <n>', 'newest records shown (at most 10000)').argParser(parseLimit).default(100))
    .addOption(outputOption())
    .action(async (opts: AuditOptions, cmd: Command) => {
      const now = ctx.now();
      const since = opts.since === undefined ? undefined : parseSince(opts.since, now);
      const until = opts.until === undefined ? undefined : parseUntil(opts.until, now);
      if (opts.verb !== undefined && !/^[a-z][a-z-]*$/.test(opts.verb)) throw new UsageError(`invalid --verb "${opts.verb}": a lowercase word such as delete or exec`);
      if (opts.kind !== undefined && !/^[A-Za-z]+$/.test(opts.kind)) throw new UsageError(`invalid --kind "${opts.kind}": a kind such as node or secret`);
      const answer = await ctx.client(cmd).queryAudit({
        since, until, verb: opts.verb, kind: opts.kind, name: opts.name === undefined ? undefined : parseName(opts.name, 'object'),
        token: opts.user, limit: opts.limit,
      });
      emit(ctx, opts.output, answer, () => {
        if (answer.items.length === 0) return 'No audit records match.\n';
        const more = answer.truncated ? `(older matching records not shown: raise --limit or narrow --since)\n` : '';
        return renderTable(AUDIT_COLUMNS, answer.items.map(auditRow)) + more;
      });
    });
}

/** `--until` takes what `--since` takes; its errors name `--until`. */
function parseUntil(value: string, now: Date): string {
  try {
    return parseSince(value, now);
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(err.message.replace('--since', '--until'));
    throw err;
  }
}
