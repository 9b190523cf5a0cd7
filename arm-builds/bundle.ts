import { build } from 'esbuild';
import { join } from 'node:path';

/** Binaries of the edge artefact: lib/<name>.mjs is bundled from <entry>. */
export const BINARIES = [
  { name: 'edgecore', entry: 'edgecore/main.ts' },
  { name: 'edgectl', entry: 'edgectl/main.ts' },
  { name: 'mapper', entry: 'device-mappers/main.ts' },
] as const;

/**
 * Packages left out of the bundles. better-sqlite3 loads its native addon through `bindings`
 * (it ships in lib/node_modules with the addon built for the artefact's arch). The others are
 * optional dependencies npm does not install here, loaded only on paths the edge never takes:
 * serialport (modbus-serial's RTU transport, required inside a try) and proper-lockfile
 * (@ster5/global-mutex's alternative lock provider, a dynamic import node-opcua-pki never picks).
 */
const EXTERNAL = ['better-sqlite3', 'serialport', 'proper-lockfile'];

/**
 * CommonJS dependencies inside an ESM bundle still call require() and read __dirname and
 * __filename: the banner gives them the bundle's own (lib/). The names are prefixed so they
 * cannot clash with a top-level binding of a bundled ES module.
 */
const BANNER = [
  "import { createRequire as __efCreateRequire } from 'node:module';",
  "import { fileURLToPath as __efFileURLToPath } from 'node:url';",
  "import { dirname as __efDirname } from 'node:path';",
  'const require = __efCreateRequire(import.meta.url);',
  'const __filename = __efFileURLToPath(import.meta.url);',
  'const __dirname = __efDirname(__filename);',
].join('\n');

export interface BundleResult { name: string; file: string; bytes: number; warnings: string[] }

/**
 * One ESM file per binary for Node 20.11 (the armv7 runtime, the oldest the artefacts ship),
 * with the release version compiled in (protocol/version.ts reads __EDGEFLEET_VERSION__).
 * Whitespace and syntax are minified (less to parse at every start, which is what a slow ARM
 * board feels); identifiers are kept so stack traces and error class names stay readable.
 */
export async function bundleBinaries(repoRoot: string, libDir: string, version: string): Promise<BundleResult[]> {
  // The three builds at once: esbuild's service runs them in parallel.
  return Promise.all(BINARIES.map(async (bin): Promise<BundleResult> => {
    const file = join(libDir, `${bin.name}.mjs`);
    const result = await build({
      absWorkingDir: repoRoot,
      entryPoints: [bin.entry],
      outfile: file,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20.11',
      external: EXTERNAL,
      banner: { js: BANNER },
      define: { __EDGEFLEET_VERSION__: JSON.stringify(version) },
      minifyWhitespace: true,
      minifySyntax: true,
      keepNames: true,
      legalComments: 'eof',
      logLevel: 'silent',
      metafile: true,
    });
    const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
    return { name: bin.name, file, bytes, warnings: result.warnings.map((w) => `${w.location?.file ?? ''}: ${w.text}`) };
  }));
}
