import { homedir } from 'node:os';
import { Option, type Command } from 'commander';
import { configuredCa } from './caTrust.js';
import { ApiClient } from './client.js';
import { configPath, readConfig } from './configFile.js';
import { renderData, type OutputFormat } from './format.js';
import { parseOutputFormat, resolveCliSettings, type CliSettings } from './parse.js';

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
  /** The merged settings (flags > env > config file > defaults), for commands that are not plain API calls. */
  settings: (cmd: Command) => CliSettings;
  /** The config file this invocation reads and `edgectl config` writes. */
  configFile: (cmd: Command) => string;
}

export interface GlobalOptions {
  server?: string;
  token?: string;
  config?: string;
  certificateAuthority?: string;
}

export function createContext(io: CliIo): Context {
  const env = io.env ?? process.env;
  const homeDir = io.homeDir ?? homedir();
  // Settings are resolved per command, not up front, so `edgectl version` and `--help`
  // work even with a broken config file.
  const settings = (cmd: Command): CliSettings => {
    const globals = cmd.optsWithGlobals<GlobalOptions>();
    const file = readConfig(globals.config, homeDir);
    return resolveCliSettings({
      file, env, flags: { server: globals.server, token: globals.token, certificateAuthority: globals.certificateAuthority },
    });
  };
  return {
    out: io.stdout,
    err: io.stderr,
    now: io.now ?? (() => new Date()),
    settings,
    configFile: (cmd) => configPath(cmd.optsWithGlobals<GlobalOptions>().config, homeDir),
    client: (cmd) => {
      const resolved = settings(cmd);
      return new ApiClient({
        server: resolved.server, token: resolved.token, ca: configuredCa(resolved), onWarning: (text) => io.stderr(`Warning: ${text}\n`),
      });
    },
  };
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
