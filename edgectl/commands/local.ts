import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { EdgeStatusSchema, type EdgeStatus } from '../../protocol/edgeStatus.js';
import { resolveSettings, SettingsError } from '../../protocol/index.js';
import { emit, outputOption, type Context } from '../context.js';
import type { OutputFormat } from '../format.js';
import { errorText, UsageError } from '../parse.js';
import { renderLocalStatus } from './localFormat.js';

/**
 * `edgectl local status`: for a field engineer on the node (or beside it on the LAN). Reads
 * edgecore's own status API directly, so it works with the cloud down and needs no operator
 * token. Shows what the status page shows.
 */

/** edgecore's default status address (edgecore/config.ts: statusHost 127.0.0.1, statusPort 10350). */
export const DEFAULT_LOCAL_URL = 'http://127.0.0.1:10350';

export const LocalSettingsSchema = z.object({
  url: z.url({ protocol: /^https?$/, error: `must be an http(s) URL of edgecore's status API, e.g. ${DEFAULT_LOCAL_URL}` }).default(DEFAULT_LOCAL_URL),
  passwordFile: z.string().min(1).optional(),
});

/** Whatever went wrong talking to edgecore: printed as `error: …`, exit code 1. */
export class LocalStatusError extends UsageError {}

interface LocalOpts { url?: string; passwordFile?: string; output: OutputFormat }

export function registerLocal(program: Command, ctx: Context, env: Record<string, string | undefined> = process.env): void {
  const local = program.command('local').description('talk to the edgecore on this node directly (no cloud, no operator token)');
  local.command('status')
    .description('node identity, cloud link, queued items, workloads, devices, disk and memory, from edgecore\'s status API')
    .option('--url <url>', `edgecore status API (env EF_LOCAL_URL, default ${DEFAULT_LOCAL_URL})`)
    .option('--password-file <file>', 'file holding the status page password, when edgecore has one (env EF_LOCAL_PASSWORD_FILE)')
    .addOption(outputOption())
    .action(async (opts: LocalOpts) => {
      let settings: z.infer<typeof LocalSettingsSchema>;
      try {
        settings = resolveSettings(LocalSettingsSchema, 'EF_LOCAL_', { env, flags: { url: opts.url, passwordFile: opts.passwordFile } });
      } catch (err) {
        if (err instanceof SettingsError) throw new UsageError(err.message);
        throw err;
      }
      const password = settings.passwordFile ? readPassword(settings.passwordFile) : undefined;
      const { status, raw } = await fetchLocalStatus(settings.url, password);
      // json/yaml: edgecore's answer as it came (a newer edgecore's extra fields included).
      emit(ctx, opts.output, raw, () => renderLocalStatus(status, ctx.now()));
    });
}

function readPassword(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LocalStatusError(`cannot read password file ${file}: ${errorText(err)}`);
  }
  const password = (text.split(/\r?\n/)[0] ?? '').trim();
  if (!password) throw new LocalStatusError(`password file ${file} is empty`);
  return password;
}

export async function fetchLocalStatus(baseUrl: string, password: string | undefined, timeoutMs = 10_000): Promise<{ status: EdgeStatus; raw: unknown }> {
  const url = new URL('/status', baseUrl);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (password !== undefined) headers.authorization = `Basic ${Buffer.from(`edgectl:${password}`).toString('base64')}`;
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    throw new LocalStatusError(`cannot reach edgecore at ${baseUrl}: ${errorText(cause ?? err)} (is edgecore running here? its status port is --status-port, default 10350)`);
  }
  const text = await res.text();
  if (res.status === 401) {
    throw new LocalStatusError(password === undefined
      ? `edgecore at ${baseUrl} needs its local status password: pass --password-file`
      : `edgecore at ${baseUrl} refused the password from the password file`);
  }
  if (!res.ok) throw new LocalStatusError(`edgecore at ${baseUrl} answered HTTP ${res.status}: ${text.slice(0, 300)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new LocalStatusError(`edgecore at ${baseUrl} did not answer JSON on /status (is that edgecore's status port?)`);
  }
  const parsed = EdgeStatusSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new LocalStatusError(`edgecore at ${baseUrl} answered a /status this edgectl does not understand (${issue.path.join('.')}: ${issue.message}); is edgecore older than edgectl?`);
  }
  return { status: parsed.data, raw: body };
}
