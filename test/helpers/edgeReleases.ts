import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './fleet.js';

/**
 * Real edge artefacts for the upgrade tests: built by `npm run build:edge-artefacts` (x64 only,
 * signed with the dev key) once per version and kept in dist-artefacts/ (gitignored) for the
 * next run, plus a cloud dist dir holding some of them and a node's EDGEFLEET_HOME laid out as
 * install.sh leaves it.
 */

const run = promisify(execFile);
const ARTEFACTS = join(ROOT, 'dist-artefacts');
export const DEV_KEY = join(ARTEFACTS, '.dev-release-key.pem');

export const artefactFile = (version: string): string => `edgefleet-edge-${version}-linux-x64.tar.gz`;

/**
 * A digest of what goes into an artefact (the sources esbuild bundles, the loader, the build
 * itself): a cached artefact built from other sources is built again, so a test never runs
 * yesterday's edgecore.
 */
export function sourceStamp(): string {
  const hash = createHash('sha256');
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) { if (entry.name !== 'node_modules') walk(path); continue; }
      if (entry.name.endsWith('.test.ts')) continue;
      hash.update(path).update(readFileSync(path));
    }
  };
  for (const dir of ['protocol', 'edgecore', 'edgectl', 'device-mappers', 'arm-builds', join('deploy', 'edge')]) walk(join(ROOT, dir));
  return hash.digest('hex');
}

/** Builds the x64 artefact of `version` unless dist-artefacts/<version> holds one built from these sources. Returns that dir. */
export async function buildArtefact(version: string): Promise<string> {
  return underBuildLock(() => buildUnlocked(version));
}

/**
 * Test files run in parallel workers and may want the same artefact at once: one build at a
 * time (they share dist-artefacts/.cache too). The lock is a directory (mkdir is atomic); one
 * left by a killed run is taken over after 10 minutes.
 */
async function underBuildLock<T>(work: () => Promise<T>): Promise<T> {
  const lock = join(ARTEFACTS, '.test-build.lock');
  mkdirSync(ARTEFACTS, { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try { if (Date.now() - statSync(lock).mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true }); } catch { /* just released */ }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function buildUnlocked(version: string): Promise<string> {
  const dir = join(ARTEFACTS, version);
  const stampFile = join(dir, '.source-stamp');
  const stamp = sourceStamp();
  const built = existsSync(join(dir, 'SHA256SUMS.sig')) && existsSync(join(dir, artefactFile(version)));
  if (built && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return dir;
  rmSync(dir, { recursive: true, force: true });
  await run(process.execPath, [join(ROOT, 'dist', 'arm-builds', 'build.js'), '--version', version, '--arch', 'x64'], { cwd: ROOT, timeout: 600_000 });
  writeFileSync(stampFile, stamp);
  return dir;
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * A release that installs but cannot start: `from`'s artefact repacked as `version` with a
 * bin/edgecore that exits 1 at once, signed with the dev key like the real ones. What a
 * release broken in a way its build did not catch looks like to the node.
 */
export async function buildBrokenArtefact(from: string, version: string): Promise<string> {
  return underBuildLock(() => buildBrokenUnlocked(from, version));
}

async function buildBrokenUnlocked(from: string, version: string): Promise<string> {
  const dir = join(ARTEFACTS, version);
  const src = await buildUnlocked(from);
  const stamp = readFileSync(join(src, '.source-stamp'), 'utf8');
  if (existsSync(join(dir, 'SHA256SUMS.sig')) && existsSync(join(dir, '.source-stamp')) && readFileSync(join(dir, '.source-stamp'), 'utf8') === stamp) return dir;
  rmSync(dir, { recursive: true, force: true });
  const work = mkdtempSync(join(ARTEFACTS, '.broken-'));
  try {
    await run('tar', ['-xzf', join(src, artefactFile(from)), '-C', work]);
    const top = `edgefleet-edge-${version}-linux-x64`;
    await run('mv', [join(work, `edgefleet-edge-${from}-linux-x64`), join(work, top)]);
    writeFileSync(join(work, top, 'VERSION'), `${version}\n`);
    writeFileSync(join(work, top, 'bin', 'edgecore'), '#!/bin/sh\necho "edgecore: broken on purpose (an upgrade test release)" >&2\nexit 1\n');
    chmodSync(join(work, top, 'bin', 'edgecore'), 0o755);
    mkdirSync(dir, { recursive: true });
    await run('tar', ['-czf', join(dir, artefactFile(version)), '-C', work, top]);
    const body = readFileSync(join(dir, artefactFile(version)));
    const sums = Buffer.from(`${sha256(body)}  ${artefactFile(version)}\n`);
    writeFileSync(join(dir, 'SHA256SUMS'), sums);
    writeFileSync(join(dir, 'SHA256SUMS.sig'), `${sign(null, sums, createPrivateKey(readFileSync(DEV_KEY))).toString('base64')}\n`);
    cpSync(join(src, 'release-key.pub'), join(dir, 'release-key.pub'));
    writeFileSync(join(dir, '.source-stamp'), stamp);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return dir;
}

/** Copies built releases into a cloud's --dist-dir (with the release key cloudcore checks them by). */
export function distDirWith(root: string, versions: string[]): string {
  const dist = join(root, 'dist');
  for (const v of versions) cpSync(join(ARTEFACTS, v), join(dist, v), { recursive: true });
  cpSync(join(ARTEFACTS, versions[0]!, 'release-key.pub'), join(dist, 'release-key.pub'));
  return dist;
}

/** What the agentUpgrade frame for `version` carries (the cloud takes it from its index). */
export function frameFor(version: string, upgrade = 'up', revision = 2) {
  const body = readFileSync(join(ARTEFACTS, version, artefactFile(version)));
  return { type: 'agentUpgrade' as const, upgrade, revision, version, file: artefactFile(version), sha256: sha256(body), size: body.length };
}

/** An EDGEFLEET_HOME with `version` unpacked from its real artefact and `current` naming it. */
export async function installedHome(root: string, version: string): Promise<string> {
  const home = join(root, 'opt-edgefleet');
  mkdirSync(join(home, version), { recursive: true });
  await run('tar', ['-xzf', join(ARTEFACTS, version, artefactFile(version)), '-C', join(home, version), '--strip-components=1']);
  symlinkSync(version, join(home, 'current'));
  return home;
}
