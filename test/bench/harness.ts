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
