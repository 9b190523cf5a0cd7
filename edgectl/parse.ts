import { z } from 'zod';
import YAML from 'yaml';
import {
  AppInputSchema, LabelKeySchema, LabelValueSchema, NameSchema, parseSelectorString, resolveSettings,
  OperatorTokenRequestSchema, SelectorSyntaxError, SettingsError, TokenRequestSchema,
  type AppInput, type SettingLayers,
} from '../protocol/index.js';
import { describeIssues } from './schemaIssues.js';

/**
 * Pure parsing of everything the operator types or points at: flag values, label arguments,
 * durations, app files and settings. Each failure is a UsageError whose message names what is
 * wrong, so nothing invalid is ever sent to cloudcore.
 */

export class UsageError extends Error {}

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export const CliSettingsSchema = z.object({
  server: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL like http://127.0.0.1:8080' }).default(DEFAULT_SERVER),
  // A bearer token is one word of visible characters; a pasted line break or a second word
  // (copying two lines of the quick start's output) would otherwise fail inside fetch, as a
  // misleading "cannot reach cloudcore".
  token: z.string().min(1, 'must not be empty')
    .regex(/^[\x21-\x7e]+$/, 'must be one word of printable characters (no spaces or line breaks): copy only the token').optional(),
  // kubeconfig's pair: a path to the cloud's CA bundle, or the bundle itself (what
  // `edgectl config set-cluster --ca-pin` writes). With either, it is the only trust for https.
  certificateAuthority: z.string().min(1, 'must be a path to a PEM file').optional(),
  certificateAuthorityData: z.string().includes('-----BEGIN CERTIFICATE-----', { error: 'must be PEM text with at least one CERTIFICATE block' }).optional(),
});
export type CliSettings = z.infer<typeof CliSettingsSchema>;

/** Flags beat `EF_*` env beats the config file beats defaults (see protocol/settings.ts). */
export function resolveCliSettings(layers: SettingLayers): CliSettings {
  try {
    return resolveSettings(CliSettingsSchema, 'EF_', layers);
  } catch (err) {
    if (err instanceof SettingsError) throw new UsageError(err.message);
    throw err;
  }
}

/** The config file is a YAML mapping (`server:`, `token:`); an empty file means no settings. */
export function parseConfigFile(text: string, path: string): Record<string, unknown> {
  let data: unknown;
  try {
    data = YAML.parse(text);
  } catch (err) {
    throw new UsageError(`config file ${path} is not valid YAML: ${errorText(err)}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new UsageError(`config file ${path} must be a YAML mapping with keys like "server" and "token"`);
  }
  return data as Record<string, unknown>;
}

export const OutputFormatSchema = z.enum(['table', 'json', 'yaml']);

/** Commander argParser for `-o`: refuses anything but table|json|yaml before any request. */
export function parseOutputFormat(value: string): z.infer<typeof OutputFormatSchema> {
  const parsed = OutputFormatSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`invalid output format "${value}": must be one of table, json, yaml`);
  return parsed.data;
}

/** Checks a `-l` selector locally (same grammar as the API) and returns it unchanged for the query. */
export function parseSelectorFlag(value: string): string {
  try {
    parseSelectorString(value);
  } catch (err) {
    if (err instanceof SelectorSyntaxError) throw new UsageError(err.message);
    throw err;
  }
  return value;
}

export function parseName(value: string, what: string): string {
  const parsed = NameSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`invalid ${what} name "${value}": ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

const LimitSchema = z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(1).max(10_000));

export function parseLimit(value: string): number {
  const parsed = LimitSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`invalid --limit "${value}": must be a whole number from 1 to 10000`);
  return parsed.data;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `3600`, `3600s`, `30m`, `1h`, `7d` → seconds, within what POST /tokens accepts. */
export function parseTtl(value: string): number {
  return parseTtlWithin(value, TokenRequestSchema.shape.ttlSeconds, '30d');
}

/** `edgectl token operator create --ttl`: as a join token's, up to a year. */
export function parseOperatorTtl(value: string): number {
  return parseTtlWithin(value, OperatorTokenRequestSchema.shape.ttlSeconds, '365d');
}

function parseTtlWithin(value: string, limit: z.ZodType, limitText: string): number {
  const m = value.trim().match(/^(\d+)([smhd]?)$/);
  if (!m) throw new UsageError(`invalid --ttl "${value}": use a number with unit s, m, h or d, like 30m or 1h`);
  const seconds = Number(m[1]) * DURATION_UNITS[m[2] || 's']!;
  const parsed = limit.safeParse(seconds);
  if (!parsed.success || seconds === 0) throw new UsageError(`invalid --ttl "${value}": must be more than 0 and at most ${limitText}`);
  return seconds;
}

/**
 * `--since`: a span back from now (`90s`, `15m`, `2h`, `7d`) or an ISO time with its offset;
 * answers the ISO time the API takes.
 */
export function parseSince(value: string, now: Date): string {
  const span = value.trim().match(/^(\d+)([smhd])$/);
  if (span) return new Date(now.getTime() - Number(span[1]) * DURATION_UNITS[span[2]!]! * 1000).toISOString();
  const iso = z.iso.datetime({ offset: true }).safeParse(value.trim());
  if (iso.success) return new Date(iso.data).toISOString();
  throw new UsageError(`invalid --since "${value}": use a span like 15m, 2h or 7d, or an ISO time like 2025-01-01T00:00:00Z`);
}

/**
 * `edgectl label node N k=v gone-` arguments → a merge patch of labels (null removes).
 * A key given twice is refused: which one wins would be a guess.
 */
export function parseLabelArgs(args: string[]): Record<string, string | null> {
  if (args.length === 0) throw new UsageError('no labels given: use key=value to set and key- to remove');
  const patch: Record<string, string | null> = {};
  for (const arg of args) {
    let key: string;
    let value: string | null;
    const eq = arg.indexOf('=');
    if (eq >= 0) {
      key = arg.slice(0, eq);
      value = arg.slice(eq + 1);
    } else if (arg.endsWith('-')) {
      key = arg.slice(0, -1);
      value = null;
    } else {
      throw new UsageError(`invalid label "${arg}": use key=value to set or key- to remove`);
    }
    const keyCheck = LabelKeySchema.safeParse(key);
    if (!keyCheck.success) throw new UsageError(`invalid label key "${key}": ${keyCheck.error.issues[0]!.message}`);
    if (value !== null) {
      const valueCheck = LabelValueSchema.safeParse(value);
      if (!valueCheck.success) throw new UsageError(`invalid value for label "${key}": ${valueCheck.error.issues[0]!.message}`);
    }
    if (Object.prototype.hasOwnProperty.call(patch, key)) throw new UsageError(`label "${key}" given more than once`);
    patch[key] = value;
  }
  return patch;
}

/**
 * An apply file: YAML (one or more `---` documents) or JSON; a document may also be a list of
 * apps. Every app is validated before anything is sent, so a bad third document does not leave
 * the first two applied. Document numbers in errors count from 1, as an editor shows them.
 */
export function parseAppFile(text: string, source: string): AppInput[] {
  const values = readDocuments(text, source);
  if (values.length === 0) throw new UsageError(`${source}: no apps found`);
  const apps = parseEachDocument(values, (value, i) => parseAppDocument(value, `${source}: document ${i + 1}`));
  // The later one would silently overwrite the earlier one: almost certainly a copy-paste slip.
  const firstSeen = new Map<string, number>();
  for (const [i, app] of apps.entries()) {
    const earlier = firstSeen.get(app.metadata.name);
    if (earlier !== undefined) {
      throw new UsageError(`${source}: document ${i + 1}: field metadata.name: app "${app.metadata.name}" is already defined in document ${earlier + 1}`);
    }
    firstSeen.set(app.metadata.name, i);
  }
  return apps;
}

/**
 * Parses every document, collecting the problems of all of them, so one run shows everything to
 * fix in the file instead of one problem per attempt.
 */
export function parseEachDocument<T>(values: unknown[], parse: (value: unknown, index: number) => T): T[] {
  const results: T[] = [];
  const problems: string[] = [];
  for (const [i, value] of values.entries()) {
    try {
      results.push(parse(value, i));
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  return results;
}

/**
 * The values of a YAML (one or more `---` documents) or JSON file, a list document counting as
 * its items and empty documents skipped. Numbers in errors count documents from 1.
 */
export function readDocuments(text: string, source: string): unknown[] {
  const docs = YAML.parseAllDocuments(text);
  const values: unknown[] = [];
  // The yaml package's message ends with the line it stopped at and a caret under the column:
  // all of it is shown, for every error of every document.
  const problems = docs.flatMap((doc, i) => doc.errors.map((err) =>
    `${source}: document ${i + 1} is not valid YAML or JSON: ${err.message.trimEnd()}`));
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  for (const doc of docs) {
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue; // empty document, e.g. a trailing `---`
    if (Array.isArray(value)) values.push(...value); else values.push(value);
  }
  return values;
}

export function parseAppDocument(value: unknown, where: string): AppInput {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${where}: expected an App object, got ${Array.isArray(value) ? 'a list' : typeof value}`);
  }
  const kind = (value as { kind?: unknown }).kind;
  if (kind !== undefined && kind !== 'App') {
    throw new UsageError(`${where}: field kind: unsupported kind ${JSON.stringify(kind)} (edgectl apply handles kind App)`);
  }
  return parseWithSchema(AppInputSchema, value, where);
}

/** Validates one document, naming every field at fault (one line each), not only the first. */
export function parseWithSchema<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const lines = describeIssues(schema, value, parsed.error);
  throw new UsageError(lines.map((line) => `${where}: field ${line}`).join('\n'));
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
