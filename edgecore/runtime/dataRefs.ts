import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { DataRef, Workload, WorkloadTemplate } from '../../protocol/index.js';
import type { RunAs } from './workloadUser.js';

/**
 * Turns a Workload's config/secret references into what a runtime understands: environment
 * variables and files. Files go under `<dataDir>/<app>/{configs,secrets}/<name>/<key>`
 * (secrets 0600, directories 0700; given to the workload's user, read-only, when it has its own); a process finds them through `EF_CONFIG_DIR_<NAME>` /
 * `EF_SECRET_DIR_<NAME>`, a container gets them bind-mounted read-only at `mountPath`.
 * `EF_DATA_REVISION` (a hash of all referenced data) changes whenever any of it changes, so
 * the runtime sees a new template and rolls the workload even for file-only data.
 */

type Resolved = NonNullable<Workload['spec']['resolved']>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `my-config.v2` → `MY_CONFIG_V2`. */
export function envSuffix(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** Pure: the env a template gets from its references; keys that are not valid env names are skipped. */
export function envFromRefs(template: WorkloadTemplate, resolved: Resolved): Record<string, string> {
  const env: Record<string, string> = {};
  const add = (refs: DataRef[], source: Record<string, Record<string, string>>) => {
    for (const ref of refs) {
      if (!ref.env) continue;
      for (const [key, value] of Object.entries(source[ref.name] ?? {})) {
        const name = (ref.envPrefix ?? '') + key;
        if (ENV_NAME.test(name)) env[name] = value;
      }
    }
  };
  add(template.configs, resolved.configs);
  add(template.secrets, resolved.secrets);
  return env;
}

export function dataRevision(resolved: Resolved): string {
  return createHash('sha256').update(JSON.stringify(resolved)).digest('hex').slice(0, 16);
}

/**
 * Writes the referenced data to disk and returns the template the runtime should run.
 * Throws naming the missing references when the cloud had not got them all.
 */
export function materializeTemplate(workload: Workload, dataDir: string, owner: RunAs | null = null): WorkloadTemplate {
  const { template, resolved, app } = workload.spec;
  if (!resolved) return template;
  if (resolved.missing.length > 0) throw new Error(`waiting for ${resolved.missing.join(', ')}: not found in the cloud`);
  const env: Record<string, string> = { ...envFromRefs(template, resolved) };
  const mounts: { hostPath: string; mountPath: string }[] = [];
  for (const [refs, source, kind] of [[template.configs, resolved.configs, 'config'], [template.secrets, resolved.secrets, 'secret']] as const) {
    for (const ref of refs) {
      const dir = join(dataDir, app, `${kind}s`, ref.name);
      writeDataDir(dir, source[ref.name] ?? {}, kind === 'secret' ? 0o600 : 0o644);
      env[`EF_${kind.toUpperCase()}_DIR_${envSuffix(ref.name)}`] = dir;
      if (ref.mountPath) mounts.push({ hostPath: dir, mountPath: ref.mountPath });
    }
  }
  env.EF_DATA_REVISION = dataRevision(resolved);
  if (owner) giveToWorkload(join(dataDir, app), owner);
  // Explicit template env wins over env taken from configs and secrets, as in Kubernetes.
  const mergedEnv = { ...env, ...template.env };
  if (template.runtime === 'process') return { ...template, env: mergedEnv };
  return {
    ...template,
    env: mergedEnv,
    volumes: [...template.volumes, ...mounts.map((m) => ({ ...m, readOnly: true }))],
  };
}

/**
 * Replaces a directory's content atomically: a workload never sees half of an update. The
 * staging dir starts with "." so it is never a config or secret's own dir (names start with a
 * letter or digit): `<name>.new` was, and writing `db` wiped the secret named `db.new`.
 */
function writeDataDir(dir: string, data: Record<string, string>, mode: number): void {
  const staging = join(dirname(dir), `.${basename(dir)}.staging`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true, mode: 0o700 });
  for (const [key, value] of Object.entries(data)) writeFileSync(join(staging, key), value, { mode });
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
}

/**
 * A mapper process workload's own copy of the node's mapper password for its protocol, in its
 * private dir: the node's file is root-only, and a workload of another user must not read it.
 */
export function withPrivateMapperCredential(template: WorkloadTemplate, dataDir: string, app: string, owner: RunAs): WorkloadTemplate {
  return withPrivateCredential(template, dataDir, app, owner, 'EF_MAPPER_CREDENTIAL_FILE', 'mapper');
}

/** The same for an app's own broker password (`EF_MQTT_PASSWORD_FILE`, edgecore/devices/apps). */
export function withPrivateAppCredential(template: WorkloadTemplate, dataDir: string, app: string, owner: RunAs): WorkloadTemplate {
  return withPrivateCredential(template, dataDir, app, owner, 'EF_MQTT_PASSWORD_FILE', 'mqtt');
}

function withPrivateCredential(template: WorkloadTemplate, dataDir: string, app: string, owner: RunAs, envName: string, subdir: string): WorkloadTemplate {
  const source = template.env[envName];
  if (template.runtime !== 'process' || source === undefined) return template;
  const dir = join(dataDir, app, subdir);
  writeDataDir(dir, { password: readFileSync(source, 'utf8') }, 0o400);
  giveToWorkload(join(dataDir, app), owner);
  return { ...template, env: { ...template.env, [envName]: join(dir, 'password') } };
}

/**
 * Hands a workload's data dir to its user: owner-only dirs, read-only files. The dirs above it
 * let anyone pass but not list (0711), so another workload's user can neither list nor open it.
 */
function giveToWorkload(appDir: string, owner: RunAs): void {
  chmodSync(dirname(appDir), 0o711);
  const walk = (path: string, isDir: boolean): void => {
    chownSync(path, owner.uid, owner.gid);
    if (!isDir) { chmodSync(path, 0o400); return; }
    chmodSync(path, 0o700);
    for (const entry of readdirSync(path, { withFileTypes: true })) walk(join(path, entry.name), entry.isDirectory());
  };
  walk(appDir, true);
}

/** Removes a workload's materialized data (when it is removed from the node). */
export function removeWorkloadData(dataDir: string, app: string): void {
  rmSync(join(dataDir, app), { recursive: true, force: true });
}
