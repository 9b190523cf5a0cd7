import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The status page's static files (`edgecore/local/page/`: HTML, one script, one style sheet).
 * They are not TypeScript, so `tsc` does not copy them into dist/: edgecore reads them from
 * the source folder, which ships in the package beside dist/. Both layouts are looked up:
 *
 *   <pkg>/edgecore/local/page/            running from source (vitest, tsx)
 *   <pkg>/dist/edgecore/local/ → ../../../edgecore/local/page   running the built binary
 *
 * They are read once at start into memory: a few KiB, and the page keeps working even if the
 * disk goes read-only or the package is replaced underneath a running edgecore.
 */

export interface PageAsset { contentType: string; body: Buffer }

/** URL path → file in the page folder. Nothing else is served from it. */
const ASSETS: Record<string, { file: string; contentType: string }> = {
  '/': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  '/assets/status.js': { file: 'status.js', contentType: 'text/javascript; charset=utf-8' },
  '/assets/status.css': { file: 'status.css', contentType: 'text/css; charset=utf-8' },
};

export function pageFolderCandidates(moduleDir: string): string[] {
  return [join(moduleDir, 'page'), resolve(moduleDir, '..', '..', '..', 'edgecore', 'local', 'page')];
}

/** Loads every asset; throws naming the folders looked in if the page is not installed. */
export function loadPageAssets(moduleDir: string = import.meta.dirname): Map<string, PageAsset> {
  const candidates = pageFolderCandidates(moduleDir);
  const folder = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (folder === undefined) throw new Error(`status page files not found (looked in ${candidates.join(', ')})`);
  const assets = new Map<string, PageAsset>();
  for (const [path, { file, contentType }] of Object.entries(ASSETS)) {
    assets.set(path, { contentType, body: readFileSync(join(folder, file)) });
  }
  return assets;
}
