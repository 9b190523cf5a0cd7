import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { BINARIES } from './bundle.js';
import { artefactBase, type Arch } from './targets.js';

/**
 * A launcher per binary: POSIX sh, so it runs on any node's /bin/sh (dash, busybox). It resolves
 * its own path first, so a symlink to it (/usr/local/bin/edgectl) still finds the runtime, and
 * a running agent keeps the version directory it started from while `current` is switched.
 * edgecore runs with --lite-mode as its source binary does (edgecore/main.ts's hashbang: less
 * RSS on small boards, measured in docs/benchmarks.md, Edge agent).
 */
export function launcher(name: string): string {
  const nodeFlags = name === 'edgecore' ? ' --lite-mode' : '';
  return `#!/bin/sh
# EdgeFleet ${name}: runs the bundled lib/${name}.mjs on the Node.js runtime shipped beside it.
self=$(readlink -f -- "$0" 2>/dev/null) || self=$0
[ -n "$self" ] || self=$0
here=$(dirname -- "$self")
exec "$here/../node/bin/node"${nodeFlags} "$here/../lib/${name}.mjs" "$@"
`;
}

export interface TreeInputs {
  repoRoot: string;
  version: string;
  arch: Arch;
  nodeDir: string;
  addonPath: string;
  /** Directory holding the bundles lib/<bin>.mjs (built once for every arch). */
  bundleDir: string;
  releaseKeyPem: string;
}

/**
 * Lays out `<stagingRoot>/<base>/` exactly as the shared contract describes (common22.md,
 * Artefact). Only what the bundles load at run time ships beside them: better-sqlite3 (JS,
 * bindings, the addon), yaml (protocol/settings.ts loads it lazily with createRequire, for
 * --config files) and the status page's static files (edgecore/local/pageAssets.ts looks in
 * <module dir>/page, i.e. lib/page).
 */
export function stageTree(stagingRoot: string, t: TreeInputs): string {
  const top = join(stagingRoot, artefactBase(t.version, t.arch));
  rmSync(top, { recursive: true, force: true });
  const nm = (pkg: string) => join(t.repoRoot, 'node_modules', pkg);
  const lib = join(top, 'lib');
  const libNm = join(lib, 'node_modules');
  mkdirSync(join(top, 'node', 'bin'), { recursive: true });
  mkdirSync(join(top, 'bin'), { recursive: true });
  mkdirSync(join(top, 'share'), { recursive: true });
  mkdirSync(libNm, { recursive: true });

  writeFileSync(join(top, 'VERSION'), `${t.version}\n`);
  writeFileSync(join(top, 'ARCH'), `${t.arch}\n`);
  copyFileSync(join(t.nodeDir, 'bin', 'node'), join(top, 'node', 'bin', 'node'));
  chmodSync(join(top, 'node', 'bin', 'node'), 0o755);
  copyFileSync(join(t.nodeDir, 'LICENSE'), join(top, 'node', 'LICENSE'));

  for (const bin of BINARIES) {
    copyFileSync(join(t.bundleDir, `${bin.name}.mjs`), join(lib, `${bin.name}.mjs`));
    writeFileSync(join(top, 'bin', bin.name), launcher(bin.name), { mode: 0o755 });
  }
  cpSync(join(t.repoRoot, 'edgecore', 'local', 'page'), join(lib, 'page'), { recursive: true });
  // Bundled CommonJS code that looks for its package root at load time (node-opcua's address
  // space helpers, reached through the node-opcua index the OPC UA driver imports) walks up
  // from __dirname (lib/) and throws when no package.json is found: this one ends the walk.
  writeFileSync(join(lib, 'package.json'), `${JSON.stringify({ name: 'edgefleet-edge', version: t.version, private: true, type: 'module' }, null, 2)}\n`);

  const bs3 = join(libNm, 'better-sqlite3');
  for (const entry of ['package.json', 'LICENSE', 'lib']) cpSync(join(nm('better-sqlite3'), entry), join(bs3, entry), { recursive: true });
  mkdirSync(join(bs3, 'build', 'Release'), { recursive: true });
  copyFileSync(t.addonPath, join(bs3, 'build', 'Release', 'better_sqlite3.node'));
  for (const pkg of ['bindings', 'file-uri-to-path']) copyPackage(nm(pkg), join(libNm, pkg), ['package.json', 'LICENSE', 'LICENSE.md', 'bindings.js', 'index.js']);
  copyPackage(nm('yaml'), join(libNm, 'yaml'), ['package.json', 'LICENSE', 'dist']);

  // Written by the install/upgrade side (deploy/); shipped when present so a node has them.
  const loader = join(t.repoRoot, 'deploy', 'edge', 'edgefleet-loader');
  if (existsSync(loader)) {
    copyFileSync(loader, join(top, 'bin', 'edgefleet-loader'));
    chmodSync(join(top, 'bin', 'edgefleet-loader'), 0o755);
  }
  const unit = join(t.repoRoot, 'deploy', 'systemd', 'edgecore.service');
  if (existsSync(unit)) {
    mkdirSync(join(top, 'share', 'systemd'), { recursive: true });
    copyFileSync(unit, join(top, 'share', 'systemd', 'edgecore.service'));
  }
  writeFileSync(join(top, 'share', 'release-key.pub'), t.releaseKeyPem);
  return top;
}

function copyPackage(from: string, to: string, entries: string[]): void {
  mkdirSync(to, { recursive: true });
  for (const entry of entries) {
    if (existsSync(join(from, entry))) cpSync(join(from, entry), join(to, entry), { recursive: true });
  }
  if (!existsSync(join(to, 'package.json'))) throw new Error(`${from} is not an installed package`);
}

/**
 * tar (GNU, argv only) of `<stagingRoot>/<top>` gzipped by zlib into `outFile`. Owners, modes,
 * order and times are normalised (and gzip carries no name or time), so the same inputs give the
 * same bytes: a rebuilt release does not change its SHA256SUMS for nothing.
 */
export async function writeTarball(stagingRoot: string, top: string, outFile: string, mtimeEpoch: number): Promise<number> {
  const tar = spawn('tar', [
    '--create', '--sort=name', '--owner=0', '--group=0', '--numeric-owner',
    `--mtime=@${mtimeEpoch}`, '--mode=u+rwX,go+rX,go-w', '-C', stagingRoot, '--', top,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  tar.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  const exited = new Promise<number | null>((res, rej) => { tar.on('error', rej); tar.on('close', res); });
  const tmp = `${outFile}.tmp`;
  await pipeline(tar.stdout, createGzip({ level: 6 }), createWriteStream(tmp));
  const code = await exited;
  if (code !== 0) throw new Error(`tar failed (exit ${code}): ${err.trim()}`);
  const bytes = statSync(tmp).size;
  renameSync(tmp, outFile);
  return bytes;
}
