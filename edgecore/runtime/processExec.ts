import { spawn, spawnSync } from 'node:child_process';
import type { ExecResult } from './runtime.js';
import { findExecutable } from './workloadUser.js';

export interface ExecOptions {
  env: Record<string, string>;
  cwd?: string;
  timeoutMs: number;
  maxOutputBytes: number;
  /**
   * argv put before the command: a PID namespace and/or a user switch (workloadUser.ts). With
   * a PID namespace, the timeout's SIGKILL to the group ends everything the command started,
   * even what left the group with setsid; without one, only the group.
   */
  prefix?: readonly string[];
}

/**
 * Runs one command for `edgectl exec` (and exec probes) with a workload's environment, working
 * directory and identity. Output is capped per stream so a chatty command cannot blow up the
 * link; a command that outlives its timeout is killed with its whole process group.
 */
export function runExec(command: string[], opts: ExecOptions): Promise<ExecResult> {
  return new Promise((resolve) => {
    const prefix = opts.prefix ?? [];
    if (prefix.length > 0 && findExecutable(command[0]!, opts.env.PATH, opts.cwd) === null) {
      // Said here as spawn would have said it: behind a wrapper it is only the wrapper's exit code.
      resolve({ exitCode: null, stdout: '', stderr: `cannot run ${command[0]}: not found (or not executable) in PATH ${opts.env.PATH ?? ''}`, timedOut: false });
      return;
    }
    const [file, ...args] = prefix.length > 0 ? [...prefix, ...command] : command;
    const child = spawn(file!, args, { env: opts.env, cwd: opts.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = cappedCollector(opts.maxOutputBytes);
    const err = cappedCollector(opts.maxOutputBytes);
    child.stdout.on('data', (b: Buffer) => out.add(b));
    child.stderr.on('data', (b: Buffer) => err.add(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ exitCode: null, stdout: '', stderr: `cannot run ${file}: ${e.message}`, timedOut: false });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, stdout: out.text(), stderr: err.text(), timedOut });
    });
  });
}

/** Whether commands can run in PID namespaces of their own here: root, and util-linux `unshare` that works. */
export function pidNamespacesAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync('unshare', ['--pid', '--fork', '--kill-child', '--', 'true'], { stdio: 'ignore', timeout: 5_000 }).status === 0;
}

function cappedCollector(limit: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  let cut = false;
  return {
    add(b: Buffer) {
      if (size >= limit) { cut = true; return; }
      const take = b.subarray(0, limit - size);
      if (take.length < b.length) cut = true;
      chunks.push(take);
      size += take.length;
    },
    text() { return Buffer.concat(chunks).toString('utf8') + (cut ? `\n[output cut at ${limit} bytes]\n` : ''); },
  };
}
