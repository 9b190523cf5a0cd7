import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { ApiClient } from './client.js';
import { renderData, type OutputFormat } from './format.js';
import { errorText, parseConfigFile, parseOutputFormat, resolveCliSettings, UsageError } from './parse.js';

/** Where the CLI writes, which environment it reads, and what time it is: injectable for tests. */
export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Where `~/.edgefleet/config.yaml` is looked up; defaults to the user's home directory. */
  homeDir?: string;
  now?: () => Date;
}

/** What every command handler gets: output, the clock, and a client built from the settings. */
export interface Context {
  out: (s: string) => void;
  err: (s: string) => void;
  now: () => Date;
  client: (cmd: Command) => ApiClient;
}

interface GlobalOptions {
  server?: string;
  token?: string;
  config?: string;
}

export function createContext(io: CliIo): Context {
  const env = io.env ?? process.env;
  return {
    out: io.stdout,
    err: io.stderr,
    now: io.now ?? (() => new Date()),
    // Settings are resolved per command, not up front, so `edgectl version` and `--help`
    // work even with a broken config file.
    client: (cmd) => {
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      const file = readConfig(globals.config, io.homeDir ?? homedir());
      const settings = resolveCliSettings({ file, env, flags: { server: globals.server, token: globals.token } });
      return new ApiClient({ server: settings.server, token: settings.token, onWarning: (text) => io.stderr(`Warning: ${text}\n`) });
    },
  };
}

/** An explicit `--config` must exist; the default file is optional. */
function readConfig(explicit: string | undefined, homeDir: string): Record<string, unknown> {
  const path = explicit ?? join(homeDir, '.edgefleet', 'config.yaml');
  if (!explicit && !existsSync(path)) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${errorText(err)}`);
  }
  return parseConfigFile(text, path);
}

export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format: table, json or yaml')
    .default('table')
    .argParser(parseOutputFormat);
}

/** json/yaml print the API answer verbatim; table prints the command's own view. */
export function emit(ctx: Context, format: OutputFormat, data: unknown, table: () => string): void {
  ctx.out(format === 'table' ? table() : renderData(data, format));
}

/** Ends the command with this exit code and nothing more to print (e.g. `exec` passing on the remote command's code). */
export class CommandExit extends Error {
  constructor(readonly exitCode: number) { super(`exit ${exitCode}`); }
}
