#!/usr/bin/env node
// Builds with tsc only when a source is newer than the last build, so `npm start` with unchanged
// sources starts at once instead of spending seconds in tsc's own up-to-date check. Plain
// JavaScript because it runs before anything is built.
//
//   node scripts/build-if-changed.mjs [--root DIR]     (DIR defaults to the project root)
//
// "Newer" compares modification times with tsconfig's tsBuildInfoFile, which tsc rewrites on
// every build: any .ts/.mts/.cts/.json under tsconfig's `include`, tsconfig.json itself and
// package-lock.json (new dependency types). A missing build info means a full build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const rootFlag = process.argv.indexOf('--root');
const root = resolve(rootFlag > 0 ? process.argv[rootFlag + 1] ?? '' : join(here, '..'));
const tsconfigPath = join(root, 'tsconfig.json');

let tsconfig;
try {
  tsconfig = JSON.parse(readFileSync(tsconfigPath, 'utf8'));
} catch (err) {
  console.error(`build-if-changed: cannot read ${tsconfigPath}: ${err.message}`);
  process.exit(2);
}
const buildInfo = tsconfig.compilerOptions?.tsBuildInfoFile;
const include = Array.isArray(tsconfig.include) ? tsconfig.include : ['.'];
const SOURCE = /\.(ts|mts|cts|json)$/;
const SKIP = new Set(['node_modules', 'dist', '.git', '.data']);

/** True as soon as one file under `path` is newer than `since` (ms). */
function newerThan(path, since) {
  let st;
  try { st = statSync(path); } catch { return false; }
  if (st.isFile()) return SOURCE.test(path) && st.mtimeMs > since;
  if (!st.isDirectory()) return false;
  for (const entry of readdirSync(path)) {
    if (SKIP.has(entry)) continue;
    if (newerThan(join(path, entry), since)) return true;
  }
  return false;
}

const infoPath = buildInfo ? join(root, buildInfo) : undefined;
const builtAt = infoPath && existsSync(infoPath) ? statSync(infoPath).mtimeMs : -1;
const stale = builtAt < 0
  || [tsconfigPath, join(root, 'package-lock.json')].some((f) => newerThan(f, builtAt))
  || include.some((dir) => newerThan(join(root, dir), builtAt));

if (!stale) {
  console.error('build-if-changed: sources unchanged since the last build, not rebuilding');
  process.exit(0);
}
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
console.error('build-if-changed: building (tsc)');
const result = spawnSync(process.execPath, [tsc, '-p', tsconfigPath], { stdio: 'inherit' });
// tsc leaves its build info alone when a touched file did not change what it emits: mark the
// check done, or every start would run tsc again until a real change.
if (result.status === 0 && infoPath && existsSync(infoPath)) utimesSync(infoPath, new Date(), new Date());
process.exit(result.status ?? 1);
