import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * Runs a program with an argv array (never a shell string: nothing here is built into a command
 * line), inheriting nothing but the given env additions. Resolves with stdout; rejects with the
 * exit status and the tail of stderr, which is what a failed compiler or npm explains itself in.
 */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => { err = (err + b.toString()).slice(-8000); });
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise(Buffer.concat(out).toString());
      else reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')}… failed (${signal ?? `exit ${code}`}):\n${err.trim()}`));
    });
  });
}

export async function fileDigest(path: string, algorithm: 'sha256' | 'sha512', encoding: 'hex' | 'base64'): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest(encoding);
}

export function log(msg: string): void {
  process.stderr.write(`build-edge-artefacts: ${msg}\n`);
}
