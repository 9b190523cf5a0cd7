import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { newKeyFileText, parseKeyFile, SecretSealer } from './store/secretSealing.js';

/**
 * cloudcore's data dir holds the store (secret values, credential hashes), the operator tokens
 * and, by default, the secret key file: nobody but cloudcore's user may read any of it. A dir or
 * file of ours that is open to others (made by hand, or by an older version with the umask) is
 * closed again with a warning; one owned by another user stops the start, named, since chmod
 * would not be ours to do.
 */
export function preparePrivateDataDir(dir: string, log: Logger): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = statSync(dir);
  if (!stat.isDirectory()) throw new Error(`data dir ${dir} is not a directory`);
  closeToOthers(dir, stat, 0o700, log);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(dir, entry.name);
    closeToOthers(path, statSync(path), 0o600, log);
  }
}

function closeToOthers(path: string, stat: { mode: number; uid: number }, mode: number, log: Logger): void {
  if ((stat.mode & 0o077) === 0) return;
  const was = (stat.mode & 0o777).toString(8).padStart(4, '0');
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new Error(`${path} is mode ${was} and owned by uid ${stat.uid}, not by cloudcore's user (uid ${uid}): `
      + `others can read it; make it mode ${mode.toString(8).padStart(4, '0')} and owned by uid ${uid}`);
  }
  chmodSync(path, mode);
  log.warn({ path, was, now: mode.toString(8).padStart(4, '0') }, 'a cloudcore file or dir was readable by others: closed it');
}

/**
 * The key that seals Secret values in the store: read from `path`, or made there (0600) on
 * first start. An operator who keeps it apart from the data dir (another disk, a secrets
 * manager's mount) gives its path; losing it makes every Secret unreadable, so it belongs in
 * the backup plan beside, not inside, the database's backups.
 */
export function loadSecretSealer(path: string, log: Logger): SecretSealer {
  let text: string;
  try {
    if (!existsSync(path)) {
      // 'wx': two starts racing on one data dir cannot each write a different key.
      writeFileSync(path, newKeyFileText(), { mode: 0o600, flag: 'wx' });
      log.info({ path }, 'made a new secret encryption key file');
    }
    const stat = statSync(path);
    if ((stat.mode & 0o077) !== 0) {
      throw new Error(`mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')} lets others read it; make it 0600`);
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`secret key file ${path}: ${(err as Error).message}`);
  }
  return new SecretSealer(parseKeyFile(text, `secret key file ${path}`));
}
