import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { App, AppInput } from '../../protocol/index.js';
import { ApiError, type ApiClient } from '../client.js';
import type { Context } from '../context.js';
import { errorText, parseAppFile, UsageError } from '../parse.js';

export type ApplyResult = 'created' | 'configured' | 'unchanged';

export function registerApply(program: Command, ctx: Context): void {
  program.command('apply')
    .description('create or replace apps from a YAML or JSON file (one or more documents, kind App)')
    .requiredOption('-f, --filename <file>', 'file with the app definitions')
    .action(async (opts: { filename: string }, cmd: Command) => {
      let text: string;
      try {
        text = readFileSync(opts.filename, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read ${opts.filename}: ${errorText(err)}`);
      }
      // Parse and validate every document before the first request: all or nothing locally.
      const apps = parseAppFile(text, opts.filename);
      const client = ctx.client(cmd);
      for (const app of apps) {
        ctx.out(`app/${app.metadata.name} ${await applyApp(client, app)}\n`);
      }
    });
}

/**
 * Create, or replace when it exists. No resourceVersion is sent, so the last writer wins, as
 * with a plain `kubectl apply`; an identical app is left alone so its resourceVersion does not move.
 */
export async function applyApp(client: ApiClient, input: AppInput): Promise<ApplyResult> {
  const body = requestBody(input);
  const existing = await client.findApp(body.metadata.name);
  if (existing && sameApp(existing, body)) return 'unchanged';
  if (!existing) {
    try {
      await client.createApp(body);
      return 'created';
    } catch (err) {
      // Someone created it between our GET and POST: replace it like any other existing app.
      if (!(err instanceof ApiError && err.status === 409)) throw err;
    }
  }
  await client.replaceApp(body);
  return 'configured';
}

/** Only what the operator owns: server-owned metadata (uid, resourceVersion, generation…) and status are dropped. */
export function requestBody(input: AppInput): AppInput {
  const { name, labels, annotations } = input.metadata;
  return {
    kind: 'App',
    metadata: { name, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
    spec: input.spec,
  };
}

/** True when a PUT of `body` would change nothing the operator controls. */
export function sameApp(existing: App, body: AppInput): boolean {
  return canonical(existing.spec) === canonical(body.spec)
    && canonical(existing.metadata.labels ?? {}) === canonical(body.metadata.labels ?? {})
    && canonical(existing.metadata.annotations ?? {}) === canonical(body.metadata.annotations ?? {});
}

/** JSON with sorted keys, so key order in the file does not read as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)));
  });
}
