import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Writes a `mapper` wrapper for the checkout at `root` (its built dist/) into `dir` and returns an environment with `dir`
 * first on PATH: an edgecore started with it runs an app whose template says `command: mapper`
 * (docs/examples/virtual-mapper.yaml) as a node where the package is installed would. (dist's
 * files are not executable: npm sets that bit only when it installs a package's bins.) Used by
 * the quick start and by the tests of the examples.
 */
export function mapperOnPath(dir: string, root: string): NodeJS.ProcessEnv {
  mkdirSync(dir, { recursive: true });
  const wrapper = join(dir, 'mapper');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(join(root, 'dist', 'device-mappers', 'main.js'))} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return { ...process.env, PATH: [dir, process.env.PATH ?? ''].join(delimiter) };
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}
