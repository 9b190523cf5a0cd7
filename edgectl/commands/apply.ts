import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { App, AppInput, RouteInput } from '../../protocol/index.js';
import { ApiError, type ApiClient } from '../client.js';
import type { Context } from '../context.js';
import { canonical, parseApplyFile } from '../applyFile.js';
import { errorText, UsageError } from '../parse.js';
import type { ApplyResult } from './applyResult.js';
import { applyDevice, applyDeviceModel, createdOrExists, credentialLines } from './devices.js';

export function registerApply(program: Command, ctx: Context): void {
  program.command('apply')
    .description('create or replace apps, device models and devices from a YAML or JSON file (one or more documents; kind App, DeviceModel or Device)')
    .requiredOption('-f, --filename <file>', 'file with the definitions')
    .action(async (opts: { filename: string }, cmd: Command) => {
      let text: string;
      try {
        text = readFileSync(opts.filename, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read ${opts.filename}: ${errorText(err)}`);
      }
      // Parse and validate every document before the first request: all or nothing locally.
      const docs = parseApplyFile(text, opts.filename);
      const client = ctx.client(cmd);
      for (const doc of docs) {
        switch (doc.kind) {
          case 'App':
            ctx.out(`app/${doc.input.metadata.name} ${await applyApp(client, doc.input)}\n`);
            break;
          case 'DeviceModel':
            ctx.out(`devicemodel/${doc.input.metadata.name} ${await applyDeviceModel(client, doc.input)}\n`);
            break;
          case 'Route':
            ctx.out(`route/${doc.input.metadata.name} ${await applyRoute(client, doc.input)}\n`);
            break;
          case 'Device': {
            const { result, credentials } = await applyDevice(client, doc.input, doc.desiredGiven);
            ctx.out(`device/${doc.input.metadata.name} ${result}\n`);
            // The only time this password is shown: indent it under the device it belongs to.
            if (credentials) ctx.out(credentialLines(credentials, '  '));
            break;
          }
        }
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
  return sameOwned(existing, body);
}

/** Spec, labels and annotations: what `apply` owns of any kind. */
interface Owned { spec: unknown; metadata: { labels?: Record<string, string> | undefined; annotations?: Record<string, string> | undefined } }

function sameOwned(existing: Owned, body: Owned): boolean {
  return canonical(existing.spec) === canonical(body.spec)
    && canonical(existing.metadata.labels ?? {}) === canonical(body.metadata.labels ?? {})
    && canonical(existing.metadata.annotations ?? {}) === canonical(body.metadata.annotations ?? {});
}

/** Create, or replace when it exists and differs (last writer wins, as for apps). */
export async function applyRoute(client: ApiClient, input: RouteInput): Promise<ApplyResult> {
  const { name, labels, annotations } = input.metadata;
  const body: RouteInput = { kind: 'Route', metadata: { name, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) }, spec: input.spec };
  const existing = await client.findRoute(name);
  if (existing && sameOwned(existing, body)) return 'unchanged';
  if (!existing && await createdOrExists(() => client.createRoute(body))) return 'created';
  await client.replaceRoute(body);
  return 'configured';
}
