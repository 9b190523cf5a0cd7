import { Command, CommanderError } from 'commander';
import { EDGEFLEET_VERSION, PROTOCOL_VERSION } from '../protocol/index.js';
import { ApiError, UnreachableError } from './client.js';
import { registerApply } from './commands/apply.js';
import { registerAudit } from './commands/audit.js';
import { registerConfig } from './commands/config.js';
import { registerDelete } from './commands/delete.js';
import { registerDevices } from './commands/devices.js';
import { registerGet } from './commands/get.js';
import { registerLabel } from './commands/label.js';
import { registerNode } from './commands/node.js';
import { registerNodeAccess } from './commands/nodeAccess.js';
import { registerRollout } from './commands/rollout.js';
import { registerUpgrade } from './commands/upgrade.js';
import { registerToken } from './commands/token.js';
import { registerLocal } from './commands/local.js';
import { CommandExit, createContext, type CliIo } from './context.js';
import { DEFAULT_SERVER, UsageError } from './parse.js';

export type { CliIo } from './context.js';

/**
 * Runs edgectl with the user's arguments (`process.argv.slice(2)`) and returns the exit code.
 * Never calls process.exit and writes only through `io`, so tests drive it in-process.
 */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    // Commander already printed its own message (or the help text).
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CommandExit) return err.exitCode;
    io.stderr(errorMessage(err));
    return 1;
  }
}

function buildProgram(io: CliIo): Command {
  const ctx = createContext(io);
  const program = new Command('edgectl');
  // Output and exit settings must be in place before subcommands are added: they inherit them.
  program
    .description('operate an EdgeFleet: nodes, apps, workloads, devices and events via the cloudcore API')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    // `--version` as every CLI answers it; `edgectl version` prints the same line.
    .version(versionLine(), '--version', 'print the edgectl version')
    .showHelpAfterError('(run with --help for usage)')
    .option('--server <url>', `cloudcore URL (env EF_SERVER, default ${DEFAULT_SERVER})`)
    .option('--token <token>', 'operator bearer token (env EF_TOKEN)')
    .option('--config <file>', 'YAML file with server, token and the cloud\'s CA (default ~/.edgefleet/config.yaml if present)')
    .option('--certificate-authority <file>', 'PEM bundle of the cloud\'s CA; https is verified against it only (env EF_CERTIFICATE_AUTHORITY)');

  registerGet(program, ctx);
  registerApply(program, ctx);
  registerDelete(program, ctx);
  registerToken(program, ctx);
  registerConfig(program, ctx);
  registerAudit(program, ctx);
  registerLabel(program, ctx);
  registerNodeAccess(program, ctx);
  registerNode(program, ctx);
  registerRollout(program, ctx);
  registerUpgrade(program, ctx);
  // After get/delete: it adds device subcommands to them.
  registerDevices(program, ctx);
  // Talks to the node's edgecore, not cloudcore: for field engineers, with the cloud down.
  registerLocal(program, ctx, io.env ?? process.env);
  program.command('version')
    .description('print the edgectl version')
    .action(() => ctx.out(`${versionLine()}\n`));
  return program;
}

function versionLine(): string {
  return `edgectl ${EDGEFLEET_VERSION} (protocol v${PROTOCOL_VERSION})`;
}

function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return `error: ${err.message}${err.field ? ` (field: ${err.field})` : ''}\n`;
  if (err instanceof UnreachableError || err instanceof UsageError) return `error: ${err.message}\n`;
  // A bug in edgectl itself: keep the stack, it is what a bug report needs.
  return `error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`;
}
