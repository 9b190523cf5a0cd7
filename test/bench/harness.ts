import type { Command } from 'commander';
import type { z } from 'zod';

/**
 * The guard every benchmark runs under: a watchdog for `--timeout-seconds`, clean release of
 * the processes and temp dirs it holds on success, failure, timeout or Ctrl-C, and the output
 * convention (a human summary, then one JSON line).
 */
export interface GuardedRun<R> {
  timeoutSeconds: number;
  log: (line: string) => void;
  /** Frees everything the run holds (idempotent). */
  release: () => Promise<void>;
  /** Log tails worth printing when the run fails or times out. */
  diagnostics: () => string;
  run: () => Promise<R>;
  summary: (report: R) => string;
}

export async function runGuarded<R>(g: GuardedRun<R>): Promise<void> {
  const started = performance.now();
  const abort = (why: string, code: number) => {
    g.log(why);
    setTimeout(() => process.exit(code), 45_000).unref();
    void g.release().finally(() => process.exit(code));
  };
  const watchdog = setTimeout(() => abort(`ABORTED: the run exceeded --timeout-seconds ${g.timeoutSeconds}; ${g.diagnostics()}`, 3), g.timeoutSeconds * 1000);
  process.once('SIGINT', () => abort('interrupted', 130));
  process.once('SIGTERM', () => abort('terminated', 143));
  try {
    const report = await g.run();
    clearTimeout(watchdog);
    await g.release();
    process.stdout.write(`${g.summary(report)}\n(total ${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } catch (err) {
    clearTimeout(watchdog);
    g.log(`FAILED: ${(err as Error).message}`);
    g.log(g.diagnostics());
    await g.release();
    process.exitCode = 1;
  }
}

/**
 * Parses a benchmark's command line: commander reads the flags, zod checks them; a bad one
 * exits 2 naming the flag as typed (`--max-unavailable`, not `maxUnavailable`).
 */
export function parseBenchOptions<S extends z.ZodType>(name: string, program: Command, schema: S, argv: string[]): z.infer<S> {
  program.parse(argv);
  const parsed = schema.safeParse(program.opts());
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = `--${String(issue.path[0] ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    process.stderr.write(`${name}: ${flag}: ${issue.message}\n`);
    process.exit(2);
  }
  return parsed.data;
}
