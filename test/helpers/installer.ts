import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './fleet.js';
import { isAlive } from './wait.js';

/**
 * What the installer tests need around deploy/install.sh: real release directories made by the
 * artefact build (arm-builds/build.js, what `npm run build:edge-artefacts` runs after tsc), a
 * `uname` that answers another machine (a PATH shim), a shell to run the join line in, and a
 * plain file server for releases the cloud itself would refuse to serve (tampered ones).
 */
export const INSTALLER = join(ROOT, 'deploy', 'install.sh');

export interface BuiltRelease { version: string; dir: string; keyFile: string; publicKeyFile: string; arches: string[]; seconds: number }

/** Builds `version` for `arches` into `<out>/<version>`, signed with a key made here (kept in `keyDir`, never in what is served). */
export async function buildRelease(out: string, version: string, arches: string[], keyDir: string): Promise<BuiltRelease> {
  const keyFile = join(keyDir, 'signing-key.pem');
  if (!existsSync(keyFile)) {
    writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  }
  const dir = join(out, version);
  const started = Date.now();
  await promisify(execFile)(process.execPath, [join(ROOT, 'dist', 'arm-builds', 'build.js'), '--version', version, '--arch', arches.join(','), '--out', dir, '--signing-key', keyFile],
    { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  return { version, dir, keyFile, publicKeyFile: join(dir, 'release-key.pub'), arches, seconds: (Date.now() - started) / 1000 };
}

/** A directory holding only `uname`, answering `-m` with `machine`: put first on PATH. */
export function unameShim(dir: string, machine: string): string {
  mkdirSync(dir, { recursive: true });
  const real = ['/usr/bin/uname', '/bin/uname'].find((p) => existsSync(p)) ?? 'uname';
  writeFileSync(join(dir, 'uname'), `#!/bin/sh\nif [ "$1" = -m ]; then echo '${machine}'; else exec ${real} "$@"; fi\n`);
  chmodSync(join(dir, 'uname'), 0o755);
  return dir;
}

export interface ShellResult { code: number | null; out: string; err: string }

/** Runs `argv` (no shell string built from data: a command line is given as one argv entry to dash -c only where it is the tested line). */
export function run(argv: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<ShellResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { err += c.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
}

export const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));

/**
 * A PATH of BusyBox applets only (a small board's userland: ash, tar, awk, sha256sum, …), plus
 * curl and openssl, which the installer needs and BusyBox does not have.
 */
export function busyboxPath(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const applet of ['sh', 'awk', 'cut', 'uname', 'mktemp', 'cmp', 'readlink', 'tar', 'gzip', 'cat', 'chmod', 'mkdir', 'mv', 'ln', 'rm', 'tr', 'grep', 'sed',
    'sleep', 'kill', 'setsid', 'printf', 'id', 'hostname', 'sha256sum', 'echo', 'head', 'dirname', 'basename', 'date', 'env', 'ls', 'cp', 'touch', 'wc']) symlinkSync(BUSYBOX!, join(dir, applet));
  for (const tool of ['curl', 'openssl']) symlinkSync(['/usr/bin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p))!, join(dir, tool));
  return dir;
}

/** The PATH with `shim` first. */
export function pathWith(shim: string): string {
  return `${shim}:${process.env.PATH ?? '/usr/bin:/bin'}`;
}

/** e_machine of an ELF file: 0x3e x86-64, 0xb7 aarch64, 0x28 arm. */
export function elfMachine(path: string): number {
  const head = readFileSync(path).subarray(0, 20);
  if (head.toString('latin1', 1, 4) !== 'ELF') throw new Error(`${path} is not an ELF file`);
  return head.readUInt16LE(18);
}

/** The pid the installer recorded for a detached edgecore under `root`, if it is still alive. */
export function installedPid(root: string): number | undefined {
  const file = join(root, 'var', 'lib', 'edgefleet', 'loader.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

/**
 * A plain HTTP server of a copy of `releaseDir` at /dist/<version>/…, for bytes cloudcore would
 * never serve: `edit` changes the copy (corrupt a tarball, swap the signature).
 */
export async function serveReleaseCopy(releaseDir: string, into: string, version: string, edit: (dir: string) => void): Promise<{ url: string; server: Server }> {
  const dir = join(into, version);
  cpSync(releaseDir, dir, { recursive: true });
  edit(dir);
  const server = createServer((req, res) => {
    const m = /^\/dist\/([^/]+)\/([^/]+)$/.exec(req.url ?? '');
    const file = m && m[1] === version && !m[2]!.includes('..') ? join(dir, m[2]!) : undefined;
    if (!file || !existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { url: `http://127.0.0.1:${address.port}`, server };
}
