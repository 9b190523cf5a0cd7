import type { Command } from 'commander';
import type { Context } from '../context.js';
import { parseName } from '../parse.js';

export function registerDelete(program: Command, ctx: Context): void {
  const del = program.command('delete').description('delete an app, a node, a device or a device model');

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

  del.command('unreadable')
    .description('remove an object the cloud store holds but cannot read (every read of it fails naming it); readable objects are refused')
    .argument('<kind>', 'its kind as the error names it: App, Workload, Node, Device, Event, …')
    .argument('<name>', 'its name')
    .action(async (kind: string, name: string, _opts: object, cmd: Command) => {
      const done = await ctx.client(cmd).deleteUnreadable(kind, parseName(name, 'object'));
      ctx.out(`${done.kind.toLowerCase()}/${done.name} deleted (it was unreadable; apply it again if it should exist)\n`);
    });
}
