import { z } from 'zod';
import { createRequire } from 'node:module';

/**
 * Layered settings for every binary: defaults < YAML file < environment < flags.
 * Pure: callers read the file and the environment; this only merges and validates, and
 * names the setting and where its bad value came from.
 */

export interface SettingLayers {
  file?: Record<string, unknown>;
  env?: Record<string, string | undefined>;
  flags?: Record<string, unknown>;
}

export class SettingsError extends Error {
  constructor(message: string, readonly setting: string) { super(message); }
}

/** `dataDir` → `EF_DATA_DIR` (with prefix `EF_`). */
export function envName(prefix: string, key: string): string {
  return prefix + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** `dataDir` → `--data-dir`. */
export function flagName(key: string): string {
  return '--' + key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

export function resolveSettings<S extends z.ZodObject>(schema: S, envPrefix: string, layers: SettingLayers): z.infer<S> {
  const merged: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  const keys = Object.keys(schema.shape);
  for (const [key, value] of Object.entries(layers.file ?? {})) {
    if (!keys.includes(key)) throw new SettingsError(`unknown setting "${key}" in config file (known: ${keys.join(', ')})`, key);
    merged[key] = value;
    origin[key] = 'config file';
  }
  for (const key of keys) {
    const name = envName(envPrefix, key);
    const fromEnv = layers.env?.[name];
    if (fromEnv !== undefined && fromEnv !== '') { merged[key] = fromEnv; origin[key] = `env ${name}`; }
    const fromFlag = layers.flags?.[key];
    if (fromFlag !== undefined) { merged[key] = fromFlag; origin[key] = `flag ${flagName(key)}`; }
  }
  const parsed = schema.safeParse(merged);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = String(issue.path[0] ?? '');
  const from = origin[key] ? ` (from ${origin[key]})` : '';
  throw new SettingsError(`invalid setting "${issue.path.join('.')}"${from}: ${issue.message}`, key);
}

/** Booleans from env/flags arrive as strings. */
export const boolSetting = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  if (['true', '1', 'yes', 'on'].includes(v.toLowerCase())) return true;
  if (['false', '0', 'no', 'off'].includes(v.toLowerCase())) return false;
  return v;
}, z.boolean());

export const portSetting = z.coerce.number().int().min(0).max(65535);

/** A list from a YAML sequence, or from env/flags as comma-separated text (`a,b , c`). */
export const listSetting = z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter((x) => x !== '') : v),
  z.array(z.string().min(1).max(253)).max(64));

/** pino's levels; every binary takes `--log-level` / `EF_<BIN>_LOG_LEVEL` / `logLevel:` with this one schema. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const logLevelSetting = z.enum(LOG_LEVELS, { error: `must be one of: ${LOG_LEVELS.join(', ')}` });

/**
 * `yaml` is loaded on first use, synchronously: only a `--config` file needs it, and loading it
 * with every binary cost ~60–90 ms of edgecore's cold start (its RSS barely moved).
 */
let yamlParse: ((text: string) => unknown) | undefined;
function parseYaml(text: string): unknown {
  yamlParse ??= (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse;
  return yamlParse(text);
}

/** Parses a YAML config file's text into a settings layer (the caller does the file I/O). */
export function settingsFromYaml(text: string, source: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new SettingsError(`config file ${source} is not valid YAML: ${(err as Error).message}`, 'config');
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new SettingsError(`config file ${source} must hold a YAML mapping of settings`, 'config');
  return doc as Record<string, unknown>;
}
