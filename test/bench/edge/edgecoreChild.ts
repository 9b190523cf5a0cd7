import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { EdgeStatusSchema, parseLogLines, type EdgeLogLine, type EdgeStatus } from './edgeStatus.js';

/**
 * edgecore as a child process, optionally under V8 flags (`node <flags> main.js …`). Its log
 * goes to a file, not a pipe, so a busy benchmark can never stall edgecore's synchronous log
 * writes; the pino `time` fields then give edge-side timestamps on the same clock as ours.
 */

const MAIN = fileURLToPath(new URL('../../../edgecore/main.js', import.meta.url));

export interface EdgecoreChildOptions {
  node: string;
  cloudUrl: string;
  dataDir: string;
  logPath: string;
  /** Fixed, so the status API can be polled from the moment of spawn (cold start). */
  statusPort: number;
  heartbeatSeconds: number;
  joinToken?: string;
  /** V8/node flags placed before main.js. */
  nodeFlags?: readonly string[];
  /** Unix socket of a Docker-API engine: enables edgecore's container runtime. */
  containerEngine?: string;
  /** Device MQTT broker port (edgecore's default 1883 when omitted; 0 = any free port, for a second edgecore). */
  mqttPort?: number;
}

export class EdgecoreChild {
  /** Date.now() and performance.now() just before spawn. */
  readonly spawnedAt: number;
  readonly spawnedPerf: number;
  readonly statusUrl: string;
  private exitCode: number | null | undefined;
  private readonly exitedPromise: Promise<number | null>;

  private constructor(private readonly child: ChildProcess, readonly opts: EdgecoreChildOptions, spawnedAt: number, spawnedPerf: number) {
    this.spawnedAt = spawnedAt;
    this.spawnedPerf = spawnedPerf;
    this.statusUrl = `http://127.0.0.1:${opts.statusPort}`;
    this.exitedPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => { this.exitCode = code ?? (signal ? -1 : null); resolve(this.exitCode); });
    });
  }

  static spawn(opts: EdgecoreChildOptions): EdgecoreChild {
    const args = [
      ...(opts.nodeFlags ?? []), MAIN,
      '--node', opts.node, '--cloud-url', opts.cloudUrl, '--data-dir', opts.dataDir,
      '--status-host', '127.0.0.1', '--status-port', String(opts.statusPort),
      '--heartbeat-seconds', String(opts.heartbeatSeconds), '--log-level', 'info',
      ...(opts.joinToken ? ['--join-token', opts.joinToken] : []),
      ...(opts.containerEngine ? ['--container-engine', opts.containerEngine] : []),
      ...(opts.mqttPort !== undefined ? ['--mqtt-port', String(opts.mqttPort)] : []),
    ];
    const logFd = openSync(opts.logPath, 'a');
    try {
      const spawnedAt = Date.now();
      const spawnedPerf = performance.now();
      const child = spawn(process.execPath, args, { stdio: ['ignore', logFd, logFd] });
      if (child.pid === undefined) throw new Error('could not spawn edgecore');
      return new EdgecoreChild(child, opts, spawnedAt, spawnedPerf);
    } finally {
      closeSync(logFd);
    }
  }

  get pid(): number { return this.child.pid!; }

  exited(): boolean { return this.exitCode !== undefined; }

  logText(): string {
    try { return readFileSync(this.opts.logPath, 'utf8'); } catch { return ''; }
  }

  logLines(): EdgeLogLine[] { return parseLogLines(this.logText()); }

  logTail(lines = 15): string { return this.logText().trimEnd().split('\n').slice(-lines).join('\n'); }

  async waitForLog(msg: string, timeoutMs: number): Promise<EdgeLogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.logLines().find((l) => l.msg === msg);
      if (line) return line;
      if (this.exited()) throw new Error(`edgecore exited (${this.exitCode}) before "${msg}":\n${this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`edgecore: no "${msg}" within ${timeoutMs} ms:\n${this.logTail()}`);
      await sleep(20);
    }
  }

  /** One GET /status; throws while the server is not up yet. */
  async status(): Promise<EdgeStatus> {
    const res = await fetch(`${this.statusUrl}/status`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) throw new Error(`GET /status: HTTP ${res.status}`);
    return EdgeStatusSchema.parse(await res.json());
  }

  /**
   * Polls GET /status every `intervalMs` (measured from the start of one poll to the next)
   * until `done` holds; resolves with performance.now() of the answer that satisfied it.
   */
  async pollStatus(done: (s: EdgeStatus) => boolean, timeoutMs: number, intervalMs = 10): Promise<{ at: number; status: EdgeStatus; polls: number }> {
    const deadline = performance.now() + timeoutMs;
    let polls = 0;
    for (;;) {
      const started = performance.now();
      polls += 1;
      try {
        const status = await this.status();
        const at = performance.now();
        if (done(status)) return { at, status, polls };
      } catch {
        // not listening yet, or mid-restart
      }
      if (this.exited()) throw new Error(`edgecore exited (${this.exitCode}) while polling its status:\n${this.logTail()}`);
      if (performance.now() > deadline) throw new Error(`edgecore status condition not met within ${timeoutMs} ms:\n${this.logTail()}`);
      const wait = intervalMs - (performance.now() - started);
      if (wait > 0) await sleep(wait);
    }
  }

  /** SIGKILL (workloads keep running as orphans, as after a crash); resolves when it is gone. */
  async kill9(): Promise<void> {
    if (this.exited()) return;
    this.child.kill('SIGKILL');
    await this.exitedPromise;
  }

  /** SIGTERM (edgecore stops its workloads), SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<number | null> {
    if (this.exitCode !== undefined) return this.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exitedPromise;
    clearTimeout(timer);
    return code;
  }
}

/** A free TCP port on 127.0.0.1 (bound and released; good enough on a quiet test box). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
