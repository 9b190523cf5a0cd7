import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import YAML from 'yaml';
import { errorText, parseConfigFile, UsageError } from './parse.js';

/**
 * edgectl's config file (`~/.edgefleet/config.yaml`, or `--config`): read for every command,
 * written by `edgectl config set-cluster|set-credentials`. It holds a bearer token and the
 * trusted CA, so it is written 0600 in a 0700 directory, whole or not at all.
 */

export function configPath(explicit: string | undefined, homeDir: string): string {
  return explicit ?? join(homeDir, '.edgefleet', 'config.yaml');
}

/**
 * The file's settings; an explicit `--config` must exist, the default file is optional. A
 * relative `certificateAuthority` in the file is relative to the file (as in a kubeconfig), so
 * the file works from any working directory.
 */
export function readConfig(explicit: string | undefined, homeDir: string): Record<string, unknown> {
  const path = configPath(explicit, homeDir);
  if (!explicit && !existsSync(path)) return {};
  const settings = parseConfigFile(readConfigText(path), path);
  const ca = settings.certificateAuthority;
  if (typeof ca === 'string' && ca !== '' && !isAbsolute(ca)) settings.certificateAuthority = resolve(dirname(path), ca);
  if (settings.certificateAuthority !== undefined && settings.certificateAuthorityData !== undefined) {
    throw new UsageError(`config file ${path} sets both certificateAuthority and certificateAuthorityData: keep one`);
  }
  return settings;
}

function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${errorText(err)}`);
  }
}

/**
 * Sets (a string) or removes (undefined) keys of the config file, keeping every other key and
 * its comments. Written to a temporary file first and renamed, so a crash leaves the old file.
 */
export function updateConfigFile(path: string, changes: Record<string, string | undefined>): void {
  const text = existsSync(path) ? readConfigText(path) : '';
  parseConfigFile(text, path); // refuses a file that is not a mapping before touching it
  const parsed = YAML.parseDocument(text);
  // An empty file parses to a document with no mapping to set keys on.
  const doc = parsed.contents === null ? new YAML.Document({}) : parsed;
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) doc.delete(key);
    else doc.set(key, value);
  }
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, doc.toString({ lineWidth: 0 }), { mode: 0o600 });
  chmodSync(temporary, 0o600); // the umask may have narrowed it, never widened: make it exact
  renameSync(temporary, path);
}
