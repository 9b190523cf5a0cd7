import { run } from '../../../edgectl/program.js';

export interface CliResult { code: number; out: string; err: string }

/** Runs edgectl in-process against the cloudcore at `origin`, as the operator's shell would, and collects what it prints. */
export async function runCli(args: string[], opts: { origin: string; token: string; homeDir: string; now?: Date }): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await run(args, {
    stdout: (s) => { out += s; }, stderr: (s) => { err += s; },
    env: { EF_SERVER: opts.origin, EF_TOKEN: opts.token }, homeDir: opts.homeDir,
    ...(opts.now ? { now: () => opts.now! } : {}),
  });
  return { code, out, err };
}

/** Runs edgectl in-process with no EF_* environment: only the config file under `homeDir` (and flags) say where and how to connect. */
export async function runCliFromConfig(args: string[], homeDir: string): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await run(args, { stdout: (s) => { out += s; }, stderr: (s) => { err += s; }, env: {}, homeDir });
  return { code, out, err };
}
