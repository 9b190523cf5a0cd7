import type { Command } from 'commander';
import type { Context } from '../context.js';
import { parseName } from '../parse.js';

/** `edgectl node …`: what an operator does to a node's identity (its objects are `get`, `label`, `delete`). */
export function registerNode(program: Command, ctx: Context): void {
  const node = program.command('node').description('act on a node\'s identity');

  node.command('revoke')
    .description('end a node\'s credential now: its live link closes and it cannot reconnect until it joins with a new token; the node, its labels and its workloads stay')
    .argument('<name>', 'node name')
    .action(async (name: string, _opts: object, cmd: Command) => {
      const answer = await ctx.client(cmd).revokeNode(parseName(name, 'node'));
      ctx.out(answer.revoked
        ? `node/${answer.node} revoked: it needs a new join token (edgectl token create ${answer.node}) to connect again\n`
        : `node/${answer.node} had no credential to revoke (it has not joined, or was revoked already)\n`);
    });
}
