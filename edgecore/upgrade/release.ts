import { execFile } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { accessSync, constants, createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseSha256Sums } from './decide.js';

/**
 * The release on disk (docs/install.md, "Upgrade"): the signed SHA256SUMS checked with the
 * release key the running version shipped with, the artefact unpacked beside the running version,
 * and the current|new|old|broken links of edgefleet-loader switched one atomic rename each.
 */

const run = promisify(execFile);

/** The sha256 SHA256SUMS gives `file`, after its Ed25519 signature verified under `publicKeyPem`. */
export function signedSha256(sums: Buffer, signatureB64: Buffer, publicKeyPem: string, file: string): string {
  const signature = Buffer.from(signatureB64.toString('utf8').trim(), 'base64');
  let key;
  try {
    key = createPublicKey(publicKeyPem);
  } catch (err) {
    throw new Error(`the release key is not a public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the release key is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`);
  if (signature.length !== 64 || !verify(null, sums, key, signature)) {
    throw new Error('the signature of SHA256SUMS does not verify under this node\'s release key');
  }
  const sha = parseSha256Sums(sums.toString('utf8')).get(file);
  if (sha === undefined) throw new Error(`SHA256SUMS does not list ${file}`);
  return sha;
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Unpacks the artefact into `<home>/<version>.tmp-*` (tar, argv), checks its VERSION and ARCH,
 * and renames it to `<home>/<version>`. A directory already there under that name is not the
 * running one (the caller made sure) and is replaced: a leftover of an earlier attempt.
 */
export async function unpackRelease(home: string, tarball: string, version: string, arch: string): Promise<string> {
  const tmp = mkdtempSync(join(home, `${version}.tmp-`));
  try {
    await run('tar', ['-xzf', tarball, '-C', tmp, '--strip-components=1', '--no-same-owner'], { timeout: 300_000 });
    const said = (name: string): string => {
      try { return readFileSync(join(tmp, name), 'utf8').trim(); } catch { return '(missing)'; }
    };
    if (said('VERSION') !== version) throw new Error(`the artefact says VERSION ${said('VERSION')}, not ${version}`);
    if (said('ARCH') !== arch) throw new Error(`the artefact says ARCH ${said('ARCH')}, not ${arch}`);
    if (!existsSync(join(tmp, 'bin', 'edgecore'))) throw new Error('the artefact has no bin/edgecore');
    const dest = join(home, version);
    rmSync(dest, { recursive: true, force: true });
    renameSync(tmp, dest);
    return dest;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** `<home>/<version>` holds that version for this arch, with its edgecore: ready to switch to. */
export function installedIntact(home: string, version: string, arch: string): boolean {
  const said = (name: string): string | null => {
    try { return readFileSync(join(home, version, name), 'utf8').trim(); } catch { return null; }
  };
  try {
    accessSync(join(home, version, 'bin', 'edgecore'), constants.X_OK);
  } catch {
    return false;
  }
  return said('VERSION') === version && said('ARCH') === arch;
}

/** The version a link names (its relative target), or null when there is no such link. */
export function linkTarget(home: string, link: string): string | null {
  try { return readlinkSync(join(home, link)); } catch { return null; }
}

/** Points `<home>/<link>` at `target`: a new link under a temp name, renamed over the old one. */
export function setLink(home: string, link: string, target: string): void {
  const tmp = join(home, `.${link}.tmp-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, join(home, link));
}

export function removeLink(home: string, link: string): void {
  try { unlinkSync(join(home, link)); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; }
}

/**
 * The switch: old → what current names, new → version, current → version. `current` last, so a
 * cut before it leaves the node on its running version with a `new` the loader ignores (it is
 * only pending while current names it).
 */
export function switchTo(home: string, version: string): string {
  const previous = linkTarget(home, 'current');
  if (previous === null) throw new Error(`${join(home, 'current')} is not a link: not an installed layout`);
  setLink(home, 'old', previous);
  setLink(home, 'new', version);
  setLink(home, 'current', version);
  return previous;
}

/** The new version is healthy: no longer pending; `old` stays for a manual rollback. */
export function commitLinks(home: string): void {
  removeLink(home, 'new');
  removeLink(home, 'broken');
}

/**
 * After a commit: removes the versions no link names any more (and unpacks an interrupted
 * attempt left), so a board's disk holds at most current, old and broken. Only directories that
 * are releases (a VERSION file) or our temp dirs are touched. Returns what was removed.
 */
export function pruneVersions(home: string): string[] {
  const keep = new Set(['current', 'new', 'old', 'broken'].map((l) => linkTarget(home, l)).filter((t): t is string => t !== null));
  const removed: string[] = [];
  for (const entry of readdirSync(home, { withFileTypes: true })) {
    if (!entry.isDirectory() || keep.has(entry.name)) continue;
    const leftover = /\.tmp-[A-Za-z0-9]+$/.test(entry.name);
    if (!leftover && !existsSync(join(home, entry.name, 'VERSION'))) continue;
    rmSync(join(home, entry.name), { recursive: true, force: true });
    removed.push(entry.name);
  }
  return removed.sort();
}

/** What the loader wrote when it rolled back, taken once (then removed). */
export function takeLoaderReason(home: string): string | null {
  const path = join(home, 'rollback-reason');
  try {
    const text = readFileSync(path, 'utf8').trim().slice(0, 1024);
    rmSync(path, { force: true });
    return text === '' ? null : text;
  } catch {
    return null;
  }
}
