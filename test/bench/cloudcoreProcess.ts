import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/**
 * cloudcore as a child process, so its RSS and CPU time are its own. Its log goes to a file,
 * not a pipe: a pipe the benchmark is too busy to drain would stall cloudcore's synchronous
 * log writes and distort exactly what is being measured.
 */

export interface CloudcoreChild {
  pid: number;
  url: string;
  adminToken: string;
  logPath: string;
  /** Date.now() when the process was spawned; a --cpu-prof profile starts within ~100 ms of it. */
  spawnedAt: number;
  /** True once the process has exited (crash or stop). */
  exited(): boolean;
  /** Last lines of its log, for error messages. */
  logTail(lines?: number): string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL at once (a crashed host), resolved once the process is gone. */
  kill(): Promise<void>;
}

export interface CloudcoreChildOptions {
  dataDir: string;
  logPath: string;
  offlineAfterSeconds: number;
  /** When set, cloudcore runs under `node --cpu-prof` and writes its profile here on exit. */
  cpuProfDir?: string;
  readyTimeoutMs: number;
  /** HTTPS with the cloud's own CA and mutual TLS for edges (cloudcore's default); else plain HTTP. */
  tls?: boolean;
  /**
   * More cloudcore flags after the benchmark's own (a replica's `--store etcd --etcd-endpoints ...`,
   * `--replica-id`, a shared `--secret-key-file`).
   */
  extraArgs?: readonly string[];
}

const MAIN = fileURLToPath(new URL('../../cloudcore/main.js', import.meta.url));

/** The `cloudcore ready` line of a pino JSON log, if `text` holds one. */
export function findReadyLine(text: string): { url: string; adminTokenFile: string } | undefined {
  for (const line of text.split('\n')) {
    if (!line.includes('cloudcore ready')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: unknown; url?: unknown; adminTokenFile?: unknown };
      if (entry.msg === 'cloudcore ready' && typeof entry.url === 'string' && typeof entry.adminTokenFile === 'string') {
        return { url: entry.url, adminTokenFile: entry.adminTokenFile };
      }
    } catch {
      // a partially written line; the next poll sees it whole
    }
  }
  return undefined;
}

export async function startCloudcoreChild(opts: CloudcoreChildOptions): Promise<CloudcoreChild> {
  const logFd = openSync(opts.logPath, 'a');
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir] : [];
  let child: ChildProcess;
  const spawnedAt = Date.now();
  try {
    child = spawn(process.execPath, [
      ...nodeArgs, MAIN,
      '--data-dir', opts.dataDir, '--port', '0', '--log-level', 'info',
      '--offline-after-seconds', String(opts.offlineAfterSeconds),
      // The simulated fleet connects from loopback alone: lift the per-address connection cap.
      '--max-connections-per-address', '1000000',
      ...(opts.tls ? [] : ['--insecure-plain-http', 'true']),
      ...(opts.extraArgs ?? []),
    ], { stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  let exitCode: number | null | undefined;
  const exitedPromise = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => { exitCode = code ?? (signal ? -1 : null); resolve(exitCode); });
  });
  const readLog = () => { try { return readFileSync(opts.logPath, 'utf8'); } catch { return ''; } };
  const logTail = (lines = 20) => readLog().trimEnd().split('\n').slice(-lines).join('\n');

  const stop = async (graceMs = 15_000): Promise<number | null> => {
    if (exitCode !== undefined) return exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exitedPromise;
    clearTimeout(timer);
    return code;
  };

  const kill = async (): Promise<void> => {
    if (exitCode !== undefined) return;
    child.kill('SIGKILL');
    await exitedPromise;
  };

  const deadline = Date.now() + opts.readyTimeoutMs;
  for (;;) {
    const ready = findReadyLine(readLog());
    if (ready && child.pid !== undefined) {
      return {
        pid: child.pid,
        url: ready.url,
        adminToken: readFileSync(ready.adminTokenFile, 'utf8').trim(),
        logPath: opts.logPath,
        spawnedAt,
        exited: () => exitCode !== undefined,
        logTail,
        stop,
        kill,
      };
    }
    if (exitCode !== undefined) throw new Error(`cloudcore exited (code ${exitCode}) before it was ready:\n${logTail()}`);
    if (Date.now() > deadline) {
      await stop(2000);
      throw new Error(`cloudcore not ready within ${opts.readyTimeoutMs} ms:\n${logTail()}`);
    }
    await sleep(100);
  }
}
