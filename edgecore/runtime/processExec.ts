import { spawn } from 'node:child_process';
import type { ExecResult } from './runtime.js';

/**
 * Runs one command for `edgectl exec` with a workload's environment and working directory.
 * Output is capped per stream so a chatty command cannot blow up the link; a command that
 * outlives its timeout is killed with its whole process group.
 */
export function runExec(command: string[], opts: { env: Record<string, string>; cwd?: string; timeoutMs: number; maxOutputBytes: number }): Promise<ExecResult> {
  return new Promise((resolve) => {
    const [file, ...args] = command;
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
