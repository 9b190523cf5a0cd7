import { Option, type Command } from 'commander';
import { OperatorRoleSchema, type OperatorRole } from '../../protocol/index.js';
import { OPERATOR_TOKEN_COLUMNS, operatorTokenRow } from '../auditFormat.js';
import { emit, outputOption, type Context } from '../context.js';
import { joinCommand } from '../joinCommand.js';
import { renderTable, type OutputFormat } from '../format.js';
import { parseName, parseOperatorTtl, parseTtl, UsageError } from '../parse.js';

export function registerToken(program: Command, ctx: Context): void {
  const token = program.command('token').description('manage join tokens for edge nodes, and named operator tokens');

  token.command('create')
    .description('mint a one-time join token bound to a node name (creates a Pending node if none)')
    .argument('<node>', 'node name the token is bound to')
    .addOption(new Option('--ttl <duration>', 'lifetime: seconds or a number with s, m, h, d (at most 30d)')
      .argParser(parseTtl).default(3600, '1h'))
    .option('--print-join-command', 'print the one line to paste on the node: download, verify, install and join (docs/install.md)')
    .option('--cloud-url <url>', 'the cloud URL the node reaches (default: cloudcore\'s advertise address, else --server)')
    .addOption(outputOption())
    .action(async (node: string, opts: { ttl: number; output: OutputFormat; printJoinCommand?: boolean; cloudUrl?: string }, cmd: Command) => {
      const answer = await ctx.client(cmd).createToken(parseName(node, 'node'), opts.ttl);
      if (opts.printJoinCommand) {
        // The node must reach the URL: the cloud's own advertise address before the one this edgectl uses.
        ctx.out(`${joinCommand(opts.cloudUrl ?? answer.cloudUrl ?? ctx.settings(cmd).server, answer.node, answer.token)}\n`);
        return;
      }
      // The plain view is the token alone, so `$(edgectl token create edge-1)` just works.
      emit(ctx, opts.output, answer, () => `${answer.token}\n`);
    });

  registerOperatorTokens(token, ctx);
}

function parseRole(value: string): OperatorRole {
  const parsed = OperatorRoleSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`invalid --role "${value}": use admin or readonly`);
  return parsed.data;
}

/** `edgectl token operator create|list|revoke`: one bearer token per person, so the audit log names who acted. */
function registerOperatorTokens(token: Command, ctx: Context): void {
  const operator = token.command('operator').description('named operator tokens (admin only): one per person, named in the audit log');

  operator.command('create')
    .description('mint a named operator token; it is printed this once')
    .argument('<name>', 'who the token is for, e.g. alice')
    .addOption(new Option('--role <role>', 'admin or readonly').argParser(parseRole).makeOptionMandatory())
    .addOption(new Option('--ttl <duration>', 'lifetime: seconds or a number with s, m, h, d (at most 365d)')
      .argParser(parseOperatorTtl).default(90 * 86_400, '90d'))
    .addOption(outputOption())
    .action(async (name: string, opts: { role: OperatorRole; ttl: number; output: OutputFormat }, cmd: Command) => {
      const answer = await ctx.client(cmd).createOperatorToken({ name: parseName(name, 'token name'), role: opts.role, ttlSeconds: opts.ttl });
      // stdout is the token alone (for `$(…)`); the reminder goes to stderr.
      emit(ctx, opts.output, answer, () => {
        ctx.err(`operator token "${answer.name}" (${answer.role}, id ${answer.id}, expires ${answer.expiresAt}): store it now, it is not shown again\n`);
        return `${answer.token}\n`;
      });
    });

  operator.command('list')
    .description('list named operator tokens: name, id, role, created, expires, last used (never the token)')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, cmd: Command) => {
      const answer = await ctx.client(cmd).listOperatorTokens();
      const now = ctx.now();
      emit(ctx, opts.output, answer, () => (answer.items.length === 0
        ? 'No named operator tokens (the bootstrap tokens are in cloudcore\'s data dir).\n'
        : renderTable(OPERATOR_TOKEN_COLUMNS, answer.items.map((t) => operatorTokenRow(t, now)))));
    });

  operator.command('revoke')
    .description('revoke a named operator token: it is refused (401) from now on')
    .argument('<name>', 'the token\'s name')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat }, cmd: Command) => {
      const answer = await ctx.client(cmd).revokeOperatorToken(parseName(name, 'token name'));
      emit(ctx, opts.output, answer, () => `operator token "${answer.name}" (id ${answer.id}) revoked\n`);
    });
}
