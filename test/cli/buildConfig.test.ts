import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * `npm start` and `npm test` build first. The build is incremental, so a start with unchanged
 * sources only checks them (seconds) instead of recompiling everything; the build info lives
 * in dist/, so removing dist/ (or a fresh clone) always means a full build.
 */
describe('build configuration', () => {
  it('builds incrementally with its build info inside dist/', () => {
    const config = JSON.parse(readFileSync(join(import.meta.dirname, '../../tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    expect(config.compilerOptions.incremental).toBe(true);
    expect(config.compilerOptions.tsBuildInfoFile).toBe('dist/.tsbuildinfo');
    expect(config.compilerOptions.outDir).toBe('dist');
  });
});
