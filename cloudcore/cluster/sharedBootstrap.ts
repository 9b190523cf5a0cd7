import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ApiTokens } from '../api/index.js';
import { CertificateAuthority } from '../pki/certificateAuthority.js';
import type { ClusterSecrets } from './clusterSecrets.js';

/**
 * What every replica of a fleet must hold alike and one cloudcore keeps in its data dir: the
 * operator tokens and the cloud CA (unless the operator gives one with --ca-cert/--ca-key, which
 * every replica then reads from its own files). The first replica makes them, every other takes
 * them from etcd (sealed under the shared secret key file, clusterSecrets.ts), and each writes
 * its copy into its data dir where the rest of cloudcore, and the operator, read them.
 */

const SharedCaSchema = z.strictObject({ cert: z.string().min(1), key: z.string().min(1) });

export async function shareOperatorTokens(secrets: ClusterSecrets, dataDir: string): Promise<ApiTokens & { adminPath: string }> {
  const token = (name: string) => secrets.getOrCreate(name, () => randomBytes(24).toString('base64url'));
  const admin = await token('operator-token-admin');
  const readonly = await token('operator-token-readonly');
  keepLocalCopy(join(dataDir, 'admin.token'), `${admin}\n`, 0o600);
  keepLocalCopy(join(dataDir, 'readonly.token'), `${readonly}\n`, 0o600);
  return { admin, readonly, adminPath: join(dataDir, 'admin.token') };
}

/**
 * Makes this replica's `<dataDir>/pki/ca.crt` and `ca.key` the fleet's: the first replica's CA
 * is stored in etcd and every later one overwrites a CA of its own making with it. Edges pin the
 * CA bundle, so all replicas must present certificates from the one CA.
 */
export async function shareCloudCa(secrets: ClusterSecrets, dataDir: string, log: Logger): Promise<void> {
  const certPath = join(dataDir, 'pki', 'ca.crt');
  const keyPath = join(dataDir, 'pki', 'ca.key');
  const local = (): string => {
    if (!existsSync(certPath) || !existsSync(keyPath)) return '';
    return JSON.stringify({ cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') });
  };
  // A CA of this replica's own first (made if it has none): it becomes the fleet's if this
  // replica stores one first, and is replaced by the stored one otherwise.
  await CertificateAuthority.open({ dataDir }, log);
  const text = await secrets.getOrCreate('cloud-ca', local);
  const parsed = SharedCaSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`the fleet's CA in etcd (cluster secret "cloud-ca") is not a certificate and key: ${parsed.error.issues[0]?.message}`);
  if (local() === text) return;
  keepLocalCopy(keyPath, parsed.data.key, 0o600);
  keepLocalCopy(certPath, parsed.data.cert, 0o644);
  log.info({ path: certPath }, 'took the fleet\'s CA from etcd (made by the first replica)');
}

/** Writes `text` to `path` unless it holds it already, whole or not at all. */
function keepLocalCopy(path: string, text: string, mode: number): void {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode });
  renameSync(temp, path);
}
