import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { CloudSettingsSchema } from '../../cloudcore/config.js';
import { startCloudCore, type CloudCore } from '../../cloudcore/server.js';
import { findReadyLine } from '../bench/cloudcoreProcess.js';
import { TcpProxy } from './tcpProxy.js';

/**
 * cloudcore for the simulated fleet, always behind a TcpProxy so its address never changes:
 * edges and the test keep one URL while cloudcore is killed and restarted on the same data
 * dir (a child process then comes back on a new port and the proxy is re-targeted).
 * In-process is lighter for most tests; a child process is what `kill -9` needs and what
 * the benchmark measures.
 */

export interface SimCloud {
  /** Stable URL (the proxy) for edges and the REST API. */
  url: string;
  adminToken: string;
  dataDir: string;
  /** pid of the cloudcore process (this process when in-process). */
  pid(): number;
  /** Date.now() when the current cloudcore process was spawned (a --cpu-prof profile starts about then). */
  spawnedAt(): number;
  /** SIGKILL for a child process (no shutdown at all); in-process this can only close it. */
  kill(): Promise<void>;
  /** Starts cloudcore again on the same data dir, behind the same URL. */
  restart(): Promise<void>;
  close(): Promise<void>;
  logTail(lines?: number): string;
}

/**
 * Every simulated edge connects from loopback (one source address), so the per-address
 * connection cap that guards a real cloudcore would refuse a simulated fleet past 256 edges.
 */
// Plain HTTP unless a run asks for TLS (insecurePlainHttp: 'false'): the mTLS benchmark does.
const SIMULATED_FLEET_SETTINGS: Record<string, string | number> = { maxConnectionsPerAddress: 1_000_000, insecurePlainHttp: 'true' };

export interface SimCloudOptions {
  dataDir: string;
  /** Extra cloudcore settings: in-process as CloudSettings keys, child as EF_CLOUD_* env (camelCase → SNAKE). */
  settings?: Record<string, string | number>;
  offlineAfterSeconds?: number;
}

export async function startInProcessCloud(opts: SimCloudOptions): Promise<SimCloud> {
  mkdirSync(opts.dataDir, { recursive: true });
  const log = pino({ level: 'warn' }, pino.destination({ dest: join(opts.dataDir, 'cloudcore.log'), sync: false }));
  // Settings this cloudcore does not know (yet) are left out rather than refused.
  const known = Object.fromEntries(Object.entries({ ...SIMULATED_FLEET_SETTINGS, ...opts.settings }).filter(([k]) => k in CloudSettingsSchema.shape));
  const boot = () => startCloudCore(CloudSettingsSchema.parse({
    dataDir: opts.dataDir, port: 0, offlineAfterSeconds: opts.offlineAfterSeconds ?? 5, ...known,
  }), log);
  const startedAt = Date.now();
  let core: CloudCore | undefined = await boot();
  const proxy = new TcpProxy(Number(new URL(core.url).port));
  const url = await proxy.start();
  const adminToken = core.adminToken;
  return {
    url, adminToken, dataDir: opts.dataDir,
    pid: () => process.pid,
    spawnedAt: () => startedAt,
    async kill() { await core?.close(); core = undefined; },
    async restart() {
      await core?.close();
      core = await boot();
      proxy.retarget(Number(new URL(core.url).port));
    },
    async close() { await proxy.close(); await core?.close(); core = undefined; },
    logTail: (lines = 20) => tail(join(opts.dataDir, 'cloudcore.log'), lines),
  };
}

/**
 * The compiled cloudcore/main.js: dist/'s when this file runs from source (vitest), or the one
 * built beside it when it runs compiled (a bench under dist-test/, which holds a whole build).
 */
export function cloudcoreMain(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return import.meta.url.endsWith('.js') ? resolve(here, '../../cloudcore/main.js') : resolve(here, '../../dist/cloudcore/main.js');
}

export function settingsEnv(settings: Record<string, string | number> = {}): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).map(([k, v]) => [`EF_CLOUD_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`, String(v)]));
}

export interface ChildCloudOptions extends SimCloudOptions {
  readyTimeoutMs?: number;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  nodeArgs?: string[];
  /**
   * false: no proxy, `url` is cloudcore's own (restart reuses its port). For 10,000 edges in one
   * process, where a proxy would triple the benchmark's sockets.
   */
  proxy?: boolean;
}

export async function startChildCloud(opts: ChildCloudOptions): Promise<SimCloud> {
  if (!existsSync(cloudcoreMain())) throw new Error(`${cloudcoreMain()} is missing: build first (npm run build)`);
  mkdirSync(opts.dataDir, { recursive: true });
  const logPath = join(opts.dataDir, 'cloudcore.log');
  let child: ChildProcess | undefined;
  let spawnedAt = 0;
  let exited: Promise<void> = Promise.resolve();
  const boot = async (port = 0): Promise<{ port: number; adminToken: string }> => {
    const logFd = openSync(logPath, 'a');
    const readFrom = (() => { try { return readFileSync(logPath, 'utf8').length; } catch { return 0; } })();
    spawnedAt = Date.now();
    try {
      child = spawn(process.execPath, [
        ...(opts.nodeArgs ?? []), cloudcoreMain(), '--data-dir', opts.dataDir, '--port', String(port), '--log-level', 'info',
        '--offline-after-seconds', String(opts.offlineAfterSeconds ?? 5),
      ], { stdio: ['ignore', logFd, logFd], env: { ...process.env, ...settingsEnv({ ...SIMULATED_FLEET_SETTINGS, ...opts.settings }) } });
    } finally {
      closeSync(logFd);
    }
    const proc = child;
    let gone = false;
    exited = new Promise((resolve) => proc.once('exit', () => { gone = true; resolve(); }));
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    for (;;) {
      const ready = findReadyLine(readFileSync(logPath, 'utf8').slice(readFrom));
      if (ready) return { port: Number(new URL(ready.url).port), adminToken: readFileSync(ready.adminTokenFile, 'utf8').trim() };
      if (gone) throw new Error(`cloudcore exited before it was ready:\n${tail(logPath, 20)}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`cloudcore not ready in time:\n${tail(logPath, 20)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const first = await boot();
  const proxy = opts.proxy === false ? undefined : new TcpProxy(first.port);
  const url = proxy ? await proxy.start() : `http://127.0.0.1:${first.port}`;
  const stopChild = async (signal: NodeJS.Signals) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child?.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  return {
    url, adminToken: first.adminToken, dataDir: opts.dataDir,
    pid: () => child?.pid ?? -1,
    spawnedAt: () => spawnedAt,
    kill: () => stopChild('SIGKILL'),
    async restart() {
      await stopChild('SIGTERM');
      const next = await boot(proxy ? 0 : first.port);
      proxy?.retarget(next.port);
    },
    async close() { await proxy?.close(); await stopChild('SIGTERM'); },
    logTail: (lines = 20) => tail(logPath, lines),
  };
}

function tail(path: string, lines: number): string {
  try { return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return ''; }
}
