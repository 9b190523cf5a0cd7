import { Option, type Command } from 'commander';
import { CommandExit, type Context } from '../context.js';
import { parseName, UsageError } from '../parse.js';

/**
 * `edgectl logs` and `edgectl exec`: through cloudcore and the node's own link, so nothing
 * needs to reach the node directly. A node that is offline is named in the error.
 */
export function registerNodeAccess(program: Command, ctx: Context): void {
  program.command('logs')
    .description('print a workload\'s log from a node (through cloudcore and the node\'s link)')
    .argument('<node>', 'node name')
    .argument('<workload>', 'workload (app) name')
    .option('-f, --follow', 'keep streaming new lines until interrupted', false)
    .addOption(new Option('--tail <n>', 'lines of history to print first').argParser((v) => parseCount(v, '--tail')).default(100))
    .action(async (node: string, workload: string, opts: { follow: boolean; tail: number }, cmd: Command) => {
      await ctx.client(cmd).streamLogs(parseName(node, 'node'), parseName(workload, 'workload'), opts, (text) => ctx.out(text));
    });

  program.command('exec')
    .description('run a command beside a workload on a node (its env and working dir; inside its container)')
    .argument('<node>', 'node name')
    .argument('<workload>', 'workload (app) name')
    .argument('<command...>', 'the command and its arguments, after --')
    .addOption(new Option('--timeout <seconds>', 'kill the command after this long').argParser((v) => parseCount(v, '--timeout')).default(30))
    .action(async (node: string, workload: string, command: string[], opts: { timeout: number }, cmd: Command) => {
      const r = await ctx.client(cmd).exec(parseName(node, 'node'), parseName(workload, 'workload'), command, Math.max(1, opts.timeout));
      if (r.stdout) ctx.out(r.stdout);
      if (r.stderr) ctx.err(r.stderr);
      if (r.timedOut) ctx.err(`error: command timed out after ${opts.timeout} s\n`);
      // Exit with the command's own code, as kubectl exec does.
      if (r.exitCode !== 0) throw new CommandExit(r.exitCode ?? 1);
    });
}

function parseCount(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got "${value}"`);
  return Number(value);
}
