import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { caBundlePin } from '../../protocol/index.js';
import { configuredCa, fetchPinnedCaBundle, parseCaBundle, parseCaPin, type CaBundleSummary } from '../caTrust.js';
import { updateConfigFile } from '../configFile.js';
import type { Context, GlobalOptions } from '../context.js';
import { CliSettingsSchema, errorText, UsageError } from '../parse.js';

/**
 * `edgectl config set-cluster|set-credentials`: write the config file as kubectl's commands of
 * the same names write a kubeconfig. Only the settings given change; the rest of the file stays.
 */
export function registerConfig(program: Command, ctx: Context): void {
  const config = program.command('config').description('write edgectl\'s config file: the cloud\'s address, its CA, the operator token');

  config.command('set-cluster')
    .description('store the cloud\'s URL (--server) and the CA to verify it with: --ca-pin fetches the CA from the server and keeps it only if its SHA-256 matches')
    .addOption(new Option('--ca-pin <sha256>', 'the CA bundle\'s pin, as cloudcore prints it at start (also the part after EF1- of a pinned join token)')
      .argParser(parseCaPin).conflicts('caFile'))
    .option('--ca-file <file>', 'a PEM CA bundle to embed in the config instead')
    .option('--token-file <file>', 'also store the operator token read from this file')
    .action(async (opts: { caPin?: string; caFile?: string; tokenFile?: string }, cmd: Command) => {
      const server = cmd.optsWithGlobals<GlobalOptions>().server ?? ctx.settings(cmd).server;
      const checked = CliSettingsSchema.shape.server.safeParse(server);
      if (!checked.success) throw new UsageError(`invalid --server "${server}": must be an http(s) URL like https://cloud.example:8080`);
      const changes: Record<string, string | undefined> = { server };
      let trust: { summary: CaBundleSummary; how: string } | undefined;
      if (opts.caPin !== undefined) {
        const { bundle, summary } = await fetchPinnedCaBundle(server, opts.caPin);
        Object.assign(changes, { certificateAuthorityData: bundle, certificateAuthority: undefined });
        trust = { summary, how: `fetched from ${server} and matched pin ${opts.caPin}` };
      } else if (opts.caFile !== undefined) {
        const bundle = readText(opts.caFile, '--ca-file');
        const summary = parseCaBundle(bundle, `--ca-file ${opts.caFile}`);
        Object.assign(changes, { certificateAuthorityData: bundle, certificateAuthority: undefined });
        trust = { summary, how: `read from ${opts.caFile}` };
      }
      if (opts.tokenFile !== undefined) changes.token = readToken(opts.tokenFile);
      const path = ctx.configFile(cmd);
      updateConfigFile(path, changes);
      ctx.out(`server ${server} stored in ${path}\n`);
      if (trust) {
        ctx.out(`CA ${trust.how}: ${trust.summary.certificates} certificate(s): ${trust.summary.subjects.join('; ')}\n`);
        ctx.out('edgectl now verifies the server against this CA only (no NODE_EXTRA_CA_CERTS needed)\n');
      } else if (server.startsWith('https:')) {
        ctx.err('no --ca-pin or --ca-file: the server is verified against the CA in the config file if any, else the system\'s trusted CAs\n');
      }
      if (changes.token !== undefined) ctx.out('operator token stored\n');
    });

  config.command('view')
    .description('show the settings in effect and where the CA comes from (the token is never printed)')
    .action((_opts: object, cmd: Command) => {
      const settings = ctx.settings(cmd);
      const ca = configuredCa(settings);
      const lines = [
        `config file: ${ctx.configFile(cmd)}`,
        `server: ${settings.server}`,
        `token: ${settings.token === undefined ? '(none)' : '(set)'}`,
      ];
      if (ca === undefined) {
        lines.push('certificate authority: (none: the system\'s trusted CAs and NODE_EXTRA_CA_CERTS)');
      } else {
        const summary = parseCaBundle(ca, 'the configured CA');
        lines.push(`certificate authority: ${settings.certificateAuthority ?? 'certificateAuthorityData'} (pin ${caBundlePin(ca)})`);
        summary.subjects.forEach((subject, i) => lines.push(`  ${subject}, valid until ${summary.validTo[i]}`));
      }
      ctx.out(`${lines.join('\n')}\n`);
    });

  config.command('set-credentials')
    .description('store the operator token read from a file (not from an argument: it would show in the process list and shell history)')
    .requiredOption('--token-file <file>', 'file holding the operator token')
    .action((opts: { tokenFile: string }, cmd: Command) => {
      const path = ctx.configFile(cmd);
      updateConfigFile(path, { token: readToken(opts.tokenFile) });
      ctx.out(`operator token stored in ${path}\n`);
    });
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${errorText(err)}`);
  }
}

/** The token file's one word; a trailing newline (from `echo` or an editor) is not part of it. */
function readToken(path: string): string {
  const token = readText(path, '--token-file').trim();
  const parsed = CliSettingsSchema.shape.token.safeParse(token);
  if (!parsed.success || token === '') {
    throw new UsageError(`--token-file ${path}: ${parsed.success ? 'is empty' : parsed.error.issues[0]!.message}`);
  }
  return token;
}
