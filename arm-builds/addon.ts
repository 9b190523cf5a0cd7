import { copyFileSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { log, run } from './exec.js';
import type { NodeRuntime } from './nodeRuntime.js';
import { TOOLCHAINS, type Arch } from './targets.js';

/** ELF e_machine of each target: a compiled addon is checked against it before it is cached. */
const ELF_MACHINE: Record<Arch, number> = { x64: 0x3e, arm64: 0xb7, armv7: 0x28 };

export interface Addon { path: string; how: 'cached' | 'reused node_modules build' | 'compiled' }

/**
 * better-sqlite3's native addon for one architecture, cached in `<cache>/addons/` by
 * (better-sqlite3 version, Node version and ABI, arch). Nothing is downloaded: x64 reuses
 * node_modules' own build when the host is x64 with the same ABI (NODE_MODULE_VERSION) as the
 * pinned runtime; every other case compiles the package's bundled SQLite amalgamation with
 * node-gyp against the runtime package's headers, with Debian's cross compilers for ARM.
 */
export async function betterSqliteAddon(cache: string, repoRoot: string, arch: Arch, runtime: NodeRuntime): Promise<Addon> {
  const pkgDir = join(repoRoot, 'node_modules', 'better-sqlite3');
  const pkgVersion = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const cached = join(cache, 'addons', `better-sqlite3-${pkgVersion}-node-${runtime.pin.version}-abi${runtime.moduleVersion}-${arch}.node`);
  if (existsSync(cached)) return { path: cached, how: 'cached' };
  mkdirSync(dirname(cached), { recursive: true });

  const local = join(pkgDir, 'build', 'Release', 'better_sqlite3.node');
  if (arch === 'x64' && process.arch === 'x64' && Number(process.versions.modules) === runtime.moduleVersion && existsSync(local)) {
    checkElf(local, arch);
    copyFileSync(local, `${cached}.tmp`);
    renameSync(`${cached}.tmp`, cached);
    return { path: cached, how: 'reused node_modules build' };
  }

  // A private copy of the package's sources: node-gyp writes build/ beside binding.gyp, and the
  // checkout's node_modules must stay as npm left it.
  const work = join(cache, 'addons', `work-${arch}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  for (const entry of ['package.json', 'binding.gyp', 'src', 'deps']) cpSync(join(pkgDir, entry), join(work, entry), { recursive: true });
  const tools = TOOLCHAINS[arch];
  const env: NodeJS.ProcessEnv = tools.cc === undefined ? {} : {
    CC: tools.cc, CXX: tools.cxx, LINK: tools.cxx,
    AR: tools.cc.replace(/-gcc$/, '-ar'),
    // gyp's make generator builds any host-side tools with these; better-sqlite3 has none today.
    CC_host: 'gcc', CXX_host: 'g++', LINK_host: 'g++', AR_host: 'ar',
  };
  const started = Date.now();
  log(`better-sqlite3 ${pkgVersion} for ${arch}: compiling against ${runtime.pin.pkg}@${runtime.pin.version} headers (a few minutes)`);
  await run(process.execPath, [nodeGyp(), 'rebuild', '--release', `--nodedir=${runtime.dir}`, `--arch=${tools.gypArch}`, `--devdir=${join(cache, 'node-gyp')}`, '--jobs=2'], { cwd: work, env });
  const built = join(work, 'build', 'Release', 'better_sqlite3.node');
  checkElf(built, arch);
  copyFileSync(built, `${cached}.tmp`);
  renameSync(`${cached}.tmp`, cached);
  rmSync(work, { recursive: true, force: true });
  log(`better-sqlite3 for ${arch}: compiled in ${Math.round((Date.now() - started) / 1000)} s`);
  return { path: cached, how: 'compiled' };
}

/** npm's own node-gyp: `npm run` names it in npm_config_node_gyp; else beside npm in Node's prefix. */
function nodeGyp(): string {
  const candidates = [
    process.env.npm_config_node_gyp,
    resolve(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter((p): p is string => typeof p === 'string' && p !== '');
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new Error(`node-gyp not found (looked at ${candidates.join(', ')})`);
  return found;
}

function checkElf(path: string, arch: Arch): void {
  const head = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try { readSync(fd, head, 0, 20, 0); } finally { closeSync(fd); }
  const machine = head.readUInt16LE(18);
  if (head.readUInt32BE(0) !== 0x7f454c46 || machine !== ELF_MACHINE[arch]) {
    throw new Error(`${path} is not an ELF object for ${arch} (e_machine 0x${machine.toString(16)})`);
  }
}
