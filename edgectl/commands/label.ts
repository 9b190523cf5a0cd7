import type { Command } from 'commander';
import type { Context } from '../context.js';
import { parseLabelArgs, parseName } from '../parse.js';

export function registerLabel(program: Command, ctx: Context): void {
  const label = program.command('label').description('set or remove labels');

  label.command('node')
    .description('set labels with key=value, remove them with key-')
    .argument('<name>', 'node name')
    .argument('<labels...>', 'key=value to set, key- to remove')
    .action(async (name: string, labels: string[], _opts: object, cmd: Command) => {
      const patch = parseLabelArgs(labels);
      const node = await ctx.client(cmd).patchNodeLabels(parseName(name, 'node'), patch);
      ctx.out(`node/${node.metadata.name} labeled\n`);
    });
}
