import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `npm run build` (tsconfig.json) emits only shipped code: no test files, no test helpers, no
 * benches; those build into dist-test/ (tsconfig.test.json). Checked on a fresh build into a
 * temp folder with the same config, since tsc never deletes what an older build left in dist/.
 */
const projectRoot = join(import.meta.dirname, '../..');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

describe('npm run build', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'ef-dist-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('puts no test code into dist/', () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const build = spawnSync(process.execPath, [tsc, '-p', join(projectRoot, 'tsconfig.json'), '--outDir', outDir, '--tsBuildInfoFile', join(outDir, '.tsbuildinfo')], { encoding: 'utf8' });
    expect(build.stdout + build.stderr).toBe('');
    expect(build.status).toBe(0);

    const files = filesUnder(outDir);
    expect(files).toContain(join('cloudcore', 'main.js'));
    expect(files).toContain(join('edgecore', 'main.js'));
    expect(files).toContain(join('scripts', 'quickstart.js'));
    const testCode = files.filter((f) => /\.test\.js(\.map)?$/.test(f) || f.startsWith(`test${sep}`) || f.split(sep).includes('testing') || f.startsWith('vitest.config'));
    expect(testCode).toEqual([]);
  }, 300_000);
});
