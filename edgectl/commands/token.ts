import { Option, type Command } from 'commander';
import { emit, outputOption, type Context } from '../context.js';
import type { OutputFormat } from '../format.js';
import { parseName, parseTtl } from '../parse.js';

export function registerToken(program: Command, ctx: Context): void {
  const token = program.command('token').description('manage join tokens for edge nodes');

  token.command('create')
    .description('mint a one-time join token bound to a node name (creates a Pending node if none)')
    .argument('<node>', 'node name the token is bound to')
    .addOption(new Option('--ttl <duration>', 'lifetime: seconds or a number with s, m, h, d (at most 30d)')
      .argParser(parseTtl).default(3600, '1h'))
    .addOption(outputOption())
    .action(async (node: string, opts: { ttl: number; output: OutputFormat }, cmd: Command) => {
      const answer = await ctx.client(cmd).createToken(parseName(node, 'node'), opts.ttl);
      // The plain view is the token alone, so `$(edgectl token create edge-1)` just works.
      emit(ctx, opts.output, answer, () => `${answer.token}\n`);
    });
}
