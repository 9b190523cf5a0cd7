import type { Command } from 'commander';
import type { Context } from '../context.js';
import { parseName } from '../parse.js';

export function registerDelete(program: Command, ctx: Context): void {
  const del = program.command('delete').description('delete an app or a node');

  del.command('app')
    .description('delete an app; its workloads are removed from every node')
    .argument('<name>', 'app name')
    .action(async (name: string, _opts: object, cmd: Command) => {
      const app = await ctx.client(cmd).deleteApp(parseName(name, 'app'));
      ctx.out(`app/${app.metadata.name} deleted\n`);
    });

  del.command('node')
    .description('delete a node together with its credential and workloads')
    .argument('<name>', 'node name')
    .action(async (name: string, _opts: object, cmd: Command) => {
      const node = await ctx.client(cmd).deleteNode(parseName(name, 'node'));
      ctx.out(`node/${node.metadata.name} deleted\n`);
    });
}
