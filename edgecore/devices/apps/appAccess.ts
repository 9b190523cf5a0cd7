import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttGrant } from '../../../protocol/index.js';
import { hashPassword } from '../broker/deviceCredentials.js';
import { APP_CLIENT_ID_PREFIX } from '../broker/deviceAcl.js';
import { grantKey } from './appIdentities.js';

/**
 * App credentials on the node: one per workload whose template has `mqtt`, username
 * `app-<workload>`, a random password in `<dataDir>/apps/<workload>.password` (0600, directory
 * 0700) and the grant it was made for beside it (`<workload>.grant`), so a restarted edgecore
 * registers the same password again. The broker only ever gets the scrypt hash. A changed grant
 * gets a new password (the old one stops working and its connections end); a workload gone, or
 * without `mqtt` any more, loses its credential and files.
 */
export interface AppCredentialSink {
  setAppCredential(username: string, credential: { hash: string; workload: string; grant: MqttGrant } | undefined): void;
}

export const appUsername = (workload: string): string => `${APP_CLIENT_ID_PREFIX}${workload}`;

export class AppAccess {
  /** Per workload: the grant key registered (or being registered) and the file it ends in. */
  private readonly registered = new Map<string, { key: string; file: Promise<string> }>();

  constructor(private readonly dir: string, private readonly broker: AppCredentialSink) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  passwordFile(workload: string): string {
    return join(this.dir, `${workload}.password`);
  }

  private grantFile(workload: string): string {
    return join(this.dir, `${workload}.grant`);
  }

  /**
   * Makes sure the workload has a credential for `grant` the broker knows; returns its password
   * file. Cheap when nothing changed (every reconcile calls it); concurrent callers share one
   * registration, since hashing twice would look like a rotation to the broker.
   */
  ensure(workload: string, grant: MqttGrant): Promise<string> {
    const key = grantKey(grant);
    const current = this.registered.get(workload);
    if (current !== undefined && current.key === key) return current.file;
    const file = this.register(workload, grant, key);
    this.registered.set(workload, { key, file });
    file.catch(() => { if (this.registered.get(workload)?.file === file) this.registered.delete(workload); });
    return file;
  }

  private async register(workload: string, grant: MqttGrant, key: string): Promise<string> {
    const file = this.passwordFile(workload);
    const keep = existsSync(file) && readOr(this.grantFile(workload)) === key;
    const password = keep ? readFileSync(file, 'utf8').trim() : randomBytes(24).toString('base64url');
    const hash = await hashPassword(password);
    if (!keep) {
      // Written before the broker learns the hash: a workload that reads the file after its
      // connection was ended for the rotation finds the new password, never the old one.
      writeAtomically(file, password + '\n');
      writeAtomically(this.grantFile(workload), key);
    }
    this.broker.setAppCredential(appUsername(workload), { hash, workload, grant });
    return file;
  }

  /** The workload has no `mqtt` (any more) or is gone: no credential, no files. */
  forget(workload: string): void {
    const had = this.registered.delete(workload);
    const files = [this.passwordFile(workload), this.grantFile(workload)];
    if (!had && !files.some((f) => existsSync(f))) return;
    this.broker.setAppCredential(appUsername(workload), undefined);
    for (const f of files) rmSync(f, { force: true });
  }

  /** Forgets every workload not in `keep`: ones removed while edgecore was down leave no files behind. */
  keepOnly(keep: ReadonlySet<string>): void {
    const named = readdirSync(this.dir).filter((f) => f.endsWith('.password') || f.endsWith('.grant')).map((f) => f.slice(0, f.lastIndexOf('.')));
    for (const workload of new Set([...named, ...this.registered.keys()])) if (!keep.has(workload)) this.forget(workload);
  }
}

function readOr(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}

/** A reader sees the old file or the new one, never a half-written one. */
function writeAtomically(path: string, content: string): void {
  const staging = `${path}.staging`;
  writeFileSync(staging, content, { mode: 0o600 });
  renameSync(staging, path);
}
