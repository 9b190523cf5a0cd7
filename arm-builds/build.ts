import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { betterSqliteAddon } from './addon.js';
import { withCacheLock } from './cacheLock.js';
import { bundleBinaries } from './bundle.js';
import { fileDigest, log, run } from './exec.js';
import { nodeRuntime } from './nodeRuntime.js';
import { loadReleaseKey, signDetached } from './signing.js';
import { stageTree, writeTarball } from './tarball.js';
import { ARCHES, artefactBase, NODE_RUNTIMES, parseArches, parseVersion, type Arch } from './targets.js';

/**
 * `npm run build:edge-artefacts -- [--version X] [--arch x64,arm64,armv7] [--out DIR] [--signing-key FILE]`
 *
 * Builds the edge release directory of the shared contract (docs/install.md; common layout in
 * arm-builds/README.md): one tarball per architecture with its own Node.js runtime, the bundled
 * binaries and better-sqlite3 compiled for it, then SHA256SUMS and its Ed25519 signature.
 * Prints one JSON line on stdout describing what it made (sizes, digests, seconds per step).
 */

// dist/arm-builds/build.js → the checkout.
const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

interface ArtefactReport { arch: Arch; file: string; bytes: number; sha256: string; seconds: number; addon: string; node: string }

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      version: { type: 'string' },
      arch: { type: 'string', default: ARCHES.join(',') },
      out: { type: 'string' },
      'signing-key': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
  if (pkg.name !== 'edgefleet' || typeof pkg.version !== 'string') throw new Error(`${REPO_ROOT} is not the EdgeFleet checkout`);
  const version = parseVersion(values.version ?? pkg.version);
  const arches = parseArches(values.arch);
  const artefactsRoot = join(REPO_ROOT, 'dist-artefacts');
  const out = resolve(values.out ?? join(artefactsRoot, version));
  const cache = resolve(process.env.EDGEFLEET_ARTEFACT_CACHE ?? join(artefactsRoot, '.cache'));
  const keyFile = values['signing-key'] ?? (process.env.EDGEFLEET_SIGNING_KEY_FILE || undefined);
  const key = loadReleaseKey(keyFile, join(artefactsRoot, '.dev-release-key.pem'));
  const mtime = await sourceDateEpoch();

  mkdirSync(out, { recursive: true });
  const staging = join(out, '.staging');
  rmSync(staging, { recursive: true, force: true });
  const bundleDir = join(staging, 'bundles');
  mkdirSync(bundleDir, { recursive: true });

  const t = Date.now();
  const bundles = await bundleBinaries(REPO_ROOT, bundleDir, version);
  const bundleSeconds = (Date.now() - t) / 1000;
  for (const b of bundles) for (const w of b.warnings) log(`esbuild ${b.name}: ${w}`);
  log(`bundled ${bundles.map((b) => `${b.name} ${(b.bytes / 1048576).toFixed(1)} MiB`).join(', ')} in ${bundleSeconds.toFixed(1)} s`);

  // Every architecture at once: a cross compile of SQLite keeps about one core busy for minutes
  // (one big C file), so the ARM compiles, the runtime downloads and the x64 tarball overlap
  // instead of queueing. Each arch stages into its own directory and takes its own cache lock.
  const one = async (arch: Arch): Promise<ArtefactReport> => {
    const started = Date.now();
    const { runtime, addon } = await withCacheLock(cache, arch, async () => {
      const rt = await nodeRuntime(cache, NODE_RUNTIMES[arch]);
      return { runtime: rt, addon: await betterSqliteAddon(cache, REPO_ROOT, arch, rt) };
    });
    const top = stageTree(staging, { repoRoot: REPO_ROOT, version, arch, nodeDir: runtime.dir, addonPath: addon.path, bundleDir, releaseKeyPem: key.publicPem });
    const file = `${artefactBase(version, arch)}.tar.gz`;
    const bytes = await writeTarball(staging, artefactBase(version, arch), join(out, file), mtime);
    rmSync(top, { recursive: true, force: true });
    const sha256 = await fileDigest(join(out, file), 'sha256', 'hex');
    const seconds = (Date.now() - started) / 1000;
    log(`${file}: ${(bytes / 1048576).toFixed(1)} MiB in ${seconds.toFixed(1)} s (better-sqlite3: ${addon.how})`);
    return { arch, file, bytes, sha256, seconds, addon: addon.how, node: `${runtime.pin.pkg}@${runtime.pin.version}` };
  };
  // Settled, not Promise.all: a failed arch must not leave the others writing into a staging
  // directory that is being removed.
  const settled = await Promise.allSettled(arches.map(one));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const artefacts = settled.map((r) => (r as PromiseFulfilledResult<ArtefactReport>).value);
  rmSync(staging, { recursive: true, force: true });

  // SHA256SUMS lists every tarball of this version in the directory, so architectures built by
  // separate runs into one release directory end up in one signed list.
  const pattern = new RegExp(`^edgefleet-edge-${version.replace(/[.+]/g, '\\$&')}-linux-(${ARCHES.join('|')})\\.tar\\.gz$`);
  const lines: string[] = [];
  for (const name of readdirSync(out).filter((n) => pattern.test(n)).sort()) {
    const known = artefacts.find((a) => a.file === name);
    lines.push(`${known?.sha256 ?? await fileDigest(join(out, name), 'sha256', 'hex')}  ${name}`);
  }
  const sums = Buffer.from(`${lines.join('\n')}\n`);
  writeFileSync(join(out, 'SHA256SUMS'), sums);
  writeFileSync(join(out, 'SHA256SUMS.sig'), `${signDetached(key, sums)}\n`);
  writeFileSync(join(out, 'release-key.pub'), key.publicPem);
  log(`${out}: SHA256SUMS (${lines.length} artefacts) signed with ${key.source}`);
  process.stdout.write(`${JSON.stringify({ version, out, signingKey: key.source, bundleSeconds, bundles: bundles.map((b) => ({ name: b.name, bytes: b.bytes })), artefacts })}\n`);
}

/** SOURCE_DATE_EPOCH, else the checkout's last commit time, else now: the tarballs' file times. */
async function sourceDateEpoch(): Promise<number> {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && /^\d+$/.test(env)) return Number(env);
  if (existsSync(join(REPO_ROOT, '.git'))) {
    try {
      const ct = (await run('git', ['-C', REPO_ROOT, 'log', '-1', '--format=%ct'])).trim();
      if (/^\d+$/.test(ct)) return Number(ct);
    } catch { /* not a usable git checkout: fall through */ }
  }
  return Math.floor(Date.now() / 1000);
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
