import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';

/**
 * The dashboard's files: our own plain ES modules (`static/`, shipped as source: there is no
 * build step for them) and the browser builds of preact, htm and uPlot taken from
 * node_modules. All are read once into memory; only these exact paths are ever served.
 */

export interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/**
 * `static/` sits beside this module in the source tree; tsc does not copy it, so the compiled
 * module (dist/cloudcore/dashboard/) reads it from the package's source tree instead.
 */
export function staticDir(moduleDir: string): string {
  const candidates = [join(moduleDir, 'static'), join(moduleDir, '..', '..', '..', 'cloudcore', 'dashboard', 'static')];
  const found = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (!found) throw new Error(`dashboard assets not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** URL path under /ui/vendor/ → [package, file next to the package's resolved entry]. */
const VENDOR: Record<string, [string, string]> = {
  'preact.mjs': ['preact', 'preact.module.js'],
  'preact-hooks.mjs': ['preact/hooks', 'hooks.module.js'],
  'htm.mjs': ['htm', 'htm.module.js'],
  'uplot.mjs': ['uplot', 'uPlot.esm.js'],
  'uplot.css': ['uplot', 'uPlot.min.css'],
};

function vendorFile(specifier: string, file: string): string {
  const require = createRequire(import.meta.url);
  // The CommonJS entry lives in the same dist/ folder as the browser ES module build.
  const path = join(dirname(require.resolve(specifier)), file);
  if (!existsSync(path)) throw new Error(`dashboard: ${file} of ${specifier} not found at ${path}`);
  return path;
}

function asset(body: Buffer, path: string): Asset {
  return {
    body,
    contentType: CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
  };
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** Every servable file by its path under /ui/ (e.g. `js/main.js`, `vendor/preact.mjs`). */
export function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const path of walk(dir)) {
    if (!CONTENT_TYPES[extname(path)]) continue;
    assets.set(relative(dir, path).split(sep).join('/'), asset(readFileSync(path), path));
  }
  for (const [name, [specifier, file]] of Object.entries(VENDOR)) {
    const path = vendorFile(specifier, file);
    assets.set(`vendor/${name}`, asset(readFileSync(path), path));
  }
  return assets;
}

/**
 * The page's Content-Security-Policy: scripts only from us plus the one inline import map,
 * allowed by its hash; no inline script otherwise, no other origin, no framing.
 */
export function contentSecurityPolicy(indexHtml: string): string {
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(indexHtml)?.[1];
  const hash = importMap === undefined ? '' : ` 'sha256-${createHash('sha256').update(importMap).digest('base64')}'`;
  return [
    "default-src 'none'",
    `script-src 'self'${hash}`,
    // uPlot and preact set element styles from script; no inline <style> or style="" in our markup.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
