import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import {
  parseReleaseKey, parseSha256Sums, RELEASE_KEY_FILE, ReleaseError, ReleaseVersionSchema, SUMS_FILE, SUMS_SIG_FILE, verifyReleaseSignature, type EdgeArch,
} from '../../protocol/index.js';

/**
 * One release directory of the dist dir, checked as a whole: SHA256SUMS signed by the release
 * key, every tarball it lists present with that SHA-256. What was checked is remembered with
 * each file's identity on disk (inode, size, mtime, ctime), so a file replaced or edited later
 * is noticed by a stat and checked again, never served under the old sum.
 */

export interface ReleaseFile {
  name: string;
  path: string;
  /** Tarballs only; the meta files (SHA256SUMS, .sig, key) are served as they are. */
  arch?: EdgeArch;
  size: number;
  sha256: string;
  /** Identity on disk when it was checked. */
  stamp: string;
}

export interface VerifiedRelease { ok: true; version: string; stamp: string; files: Map<string, ReleaseFile> }
export interface RefusedRelease { ok: false; version: string; stamp: string; reason: string }
export type CheckedRelease = VerifiedRelease | RefusedRelease;

export function fileStamp(st: Pick<Stats, 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** The version directories under `distDir` (names that are not a version are skipped). */
export async function listVersionDirs(distDir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(distDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return entries.filter((e) => e.isDirectory() && ReleaseVersionSchema.safeParse(e.name).success).map((e) => e.name);
}

/**
 * The identity of a release directory as it is now: its file names and each one's stamp. Cheap
 * (a readdir and a stat a file); equal stamps mean the earlier check still holds.
 */
export async function releaseStamp(dir: string, keyStamp: string): Promise<{ stamp: string; stamps: Map<string, string> }> {
  const stamps = new Map<string, string>();
  for (const name of (await readdir(dir)).sort()) {
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st?.isFile()) stamps.set(name, fileStamp(st));
  }
  return { stamp: [keyStamp, ...[...stamps].map(([n, s]) => `${n}=${s}`)].join('|'), stamps };
}

function sameKey(pem: string, key: KeyObject): boolean {
  try {
    return parseReleaseKey(pem).export({ type: 'spki', format: 'der' }).equals(key.export({ type: 'spki', format: 'der' }));
  } catch {
    return false;
  }
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Checks release `version` in `dir` under `key`; `stamp`/`stamps` from releaseStamp just before. */
export async function checkRelease(dir: string, version: string, key: KeyObject | undefined, stamp: string, stamps: Map<string, string>): Promise<CheckedRelease> {
  const refuse = (reason: string): RefusedRelease => ({ ok: false, version, stamp, reason });
  if (!key) return refuse('no release public key to verify it with (--release-public-key)');
  if (!stamps.has(SUMS_FILE) || !stamps.has(SUMS_SIG_FILE)) return refuse(`${SUMS_FILE} or ${SUMS_SIG_FILE} missing`);
  const sums = await readFile(join(dir, SUMS_FILE));
  const sig = await readFile(join(dir, SUMS_SIG_FILE), 'utf8');
  if (!verifyReleaseSignature(sums, sig, key)) return refuse(`${SUMS_SIG_FILE} does not verify ${SUMS_FILE} under the release public key`);
  let listed;
  try {
    listed = parseSha256Sums(sums.toString('utf8'), version);
  } catch (err) {
    if (err instanceof ReleaseError) return refuse(err.message);
    throw err;
  }
  const files = new Map<string, ReleaseFile>();
  for (const [name, { arch, sha256 }] of listed) {
    const fileStampNow = stamps.get(name);
    if (!fileStampNow) return refuse(`${name} is listed in ${SUMS_FILE} but missing`);
    const path = join(dir, name);
    const actual = await sha256OfFile(path);
    if (actual !== sha256) return refuse(`${name} has SHA-256 ${actual}, not the ${sha256} ${SUMS_FILE} lists`);
    files.set(name, { name, path, arch, size: Number(fileStampNow.split(':')[1]), sha256, stamp: fileStampNow });
  }
  for (const name of [SUMS_FILE, SUMS_SIG_FILE, RELEASE_KEY_FILE]) {
    const s = stamps.get(name);
    if (!s) continue;
    const path = join(dir, name);
    // A release's own copy of the key is served only when it is the key the cloud verified it with:
    // a node must never be handed a different key beside a release.
    if (name === RELEASE_KEY_FILE && !sameKey(await readFile(path, 'utf8'), key)) continue;
    files.set(name, { name, path, size: Number(s.split(':')[1]), sha256: await sha256OfFile(path), stamp: s });
  }
  return { ok: true, version, stamp, files };
}
