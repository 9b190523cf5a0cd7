import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `npm start` builds only when a source changed since the last build
 * (scripts/build-if-changed.mjs); `npm test` always runs tsc, which is incremental. The build
 * info lives in dist/, so removing dist/ (or a fresh clone) always means a full build.
 */
const projectRoot = join(import.meta.dirname, '../..');
const script = join(projectRoot, 'scripts/build-if-changed.mjs');

describe('build configuration', () => {
  it('builds incrementally with its build info inside dist/', () => {
    const config = JSON.parse(readFileSync(join(projectRoot, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    expect(config.compilerOptions.incremental).toBe(true);
    expect(config.compilerOptions.tsBuildInfoFile).toBe('dist/.tsbuildinfo');
    expect(config.compilerOptions.outDir).toBe('dist');
  });
});

describe('build-if-changed (npm start)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-build-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = () => spawnSync(process.execPath, [script, '--root', dir], { encoding: 'utf8' });
  const emitted = join(dir, 'dist/src/a.js');

  it('builds a project without a build, skips an unchanged one, rebuilds after a source changes', () => {
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', outDir: 'dist', rootDir: '.', incremental: true, tsBuildInfoFile: 'dist/.tsbuildinfo', types: [] },
      include: ['src'],
    }));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src/a.ts'), 'export const a: number = 1;\n');

    const first = run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain('building (tsc)');
    expect(readFileSync(emitted, 'utf8')).toContain('a = 1');

    // Nothing changed: no tsc run, nothing rewritten.
    // A whole second in the past: file systems keep mtimes to a fraction of a millisecond at best.
    const past = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    utimesSync(emitted, past, past);
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stderr).toContain('not rebuilding');
    expect(Math.round(statSync(emitted).mtimeMs)).toBe(past.getTime());

    // A changed source (newer than the last build) is built.
    writeFileSync(join(dir, 'src/a.ts'), 'export const a: number = 2;\n');
    const future = new Date(Date.now() + 5_000);
    utimesSync(join(dir, 'src/a.ts'), future, future);
    const third = run();
    expect(third.status, third.stderr).toBe(0);
    expect(third.stderr).toContain('building (tsc)');
    expect(readFileSync(emitted, 'utf8')).toContain('a = 2');

    // So is a removed build (a fresh clone, or dist/ deleted).
    rmSync(join(dir, 'dist'), { recursive: true });
    const fourth = run();
    expect(fourth.status).toBe(0);
    expect(readFileSync(emitted, 'utf8')).toContain('a = 2');
  });
});
