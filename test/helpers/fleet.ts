import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { isAlive, waitFor } from './wait.js';

/**
 * Starts the real binaries (compiled to dist/ by `npm test`) as child processes, reads their
 * JSON log lines, and cleans up everything it started: processes by pid, temp dirs, and any
 * workload process groups the edges reported.
 */

export const ROOT = resolve(import.meta.dirname, '..', '..');
const DIST = join(ROOT, 'dist');

export interface LogLine { msg?: string; [k: string]: unknown }

export class Proc {
  readonly lines: LogLine[] = [];
  /** stdout as written, line by line (what parsing would hide, e.g. a key written twice). */
  readonly rawLines: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  /** Both output streams read to their end (every line is in `lines` and `stderr`). */
  readonly drained: Promise<void>;
  exitCode: number | null | undefined;

  constructor(readonly child: ChildProcess) {
    const out = createInterface({ input: child.stdout! }).on('line', (line) => {
      this.rawLines.push(line);
      try { this.lines.push(JSON.parse(line) as LogLine); } catch { this.lines.push({ msg: line }); }
    });
    const err = createInterface({ input: child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.drained = Promise.all([out, err].map((rl) => new Promise<void>((resolve) => rl.once('close', () => resolve())))).then(() => undefined);
    this.exited = new Promise((res) => child.on('exit', (code) => { this.exitCode = code; res(code); }));
  }

  get pid(): number { return this.child.pid!; }

  async waitForLog(msg: string, timeoutMs = 20_000): Promise<LogLine> {
    return waitFor(`log "${msg}" from pid ${this.pid}`, () => {
      if (this.exitCode !== undefined) throw new Error(`process exited (${this.exitCode}): ${this.stderr.join('\n')}`);
      return this.lines.find((l) => l.msg === msg);
    }, timeoutMs);
  }

  kill9(): Promise<number | null> { this.child.kill('SIGKILL'); return this.exited; }

  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * Runs a binary to its end: exit code, stdout as text (a JSON log line as its `msg`, else
 * whole) and stderr as text.
 */
export async function runToEnd(bin: 'cloudcore' | 'edgecore' | 'edgectl' | 'mapper', args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  const proc = runBin(bin, args, env);
  const [code] = await Promise.all([proc.exited, proc.drained]);
  return { code, out: proc.lines.map((l) => l.msg ?? JSON.stringify(l)).join('\n'), err: proc.stderr.join('\n') };
}

export function runBin(bin: 'cloudcore' | 'edgecore' | 'edgectl' | 'mapper', args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const entry = bin === 'mapper' ? join(DIST, 'device-mappers', 'main.js') : join(DIST, bin, 'main.js');
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Proc(child);
}

export interface Cloud { proc: Proc; url: string; port: number; token: string; dataDir: string; caPin: string | null }
export interface Edge { proc: Proc; node: string; statusUrl: string; dataDir: string }

/** Runs `sql` on a stopped edge's database, as an older edgecore or a hand edit would have left it. */
export function editEdgeDatabase(edge: Edge, sql: string): void {
  const db = new Database(join(edge.dataDir, 'edge.db'));
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

export interface EdgeStatus {
  node: string;
  link: { state: string; downSince: string | null; lastError: string | null; stats: { connects: number; syncFrames: number; snapshots: number; changesReceived: number } | null };
  sync: { epoch: string; lastRevision: number };
  outbox: { depth: number; dropped: number };
  workloads: { name: string; generation: number; status: { state: string; pid?: number | null; restarts: number } | null }[];
}

export class Fleet {
  private readonly procs: Proc[] = [];
  private readonly dirs: string[] = [];
  private readonly workloadPids = new Set<number>();
  readonly root: string;

  constructor() {
    this.root = this.tempDir('edgefleet-test-');
  }

  /**
   * A scratch dir shared with the workloads, like /tmp (1777): where edgecore is root, process
   * workloads run as their own unprivileged user, and tests read what they write here.
   */
  tempDir(prefix = 'ef-'): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    chmodSync(dir, 0o1777);
    this.dirs.push(dir);
    return dir;
  }

  /**
   * A cloudcore on loopback. Plain HTTP unless `tls` (the default of a real cloudcore): most tests
   * are about sync, workloads and devices, not the transport; the identity tests ask for TLS.
   */
  async startCloud(opts: { dataDir?: string; port?: number; extra?: string[]; tls?: boolean } = {}): Promise<Cloud> {
    const dataDir = opts.dataDir ?? join(this.root, 'cloud');
    const transport = opts.tls ? [] : ['--insecure-plain-http', 'true'];
    const proc = runBin('cloudcore', ['--data-dir', dataDir, '--port', String(opts.port ?? 0), '--offline-after-seconds', '3', ...transport, ...(opts.extra ?? [])]);
    this.procs.push(proc);
    const ready = await proc.waitForLog('cloudcore ready');
    const url = String(ready.url);
    return { proc, url, port: Number(new URL(url).port), token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(), dataDir, caPin: typeof ready.caPin === 'string' ? ready.caPin : null };
  }

  async startEdge(opts: { node: string; cloudUrl: string; joinToken?: string; dataDir?: string; extra?: string[]; env?: NodeJS.ProcessEnv }): Promise<Edge> {
    const dataDir = opts.dataDir ?? join(this.root, opts.node);
    const args = ['--node', opts.node, '--cloud-url', opts.cloudUrl, '--data-dir', dataDir, '--status-port', '0', '--mqtt-port', '0', '--heartbeat-seconds', '1', ...(opts.extra ?? [])];
    if (opts.joinToken) args.push('--join-token', opts.joinToken);
    const proc = runBin('edgecore', args, opts.env);
    this.procs.push(proc);
    const ready = await proc.waitForLog('edgecore ready');
    return { proc, node: opts.node, statusUrl: String(ready.statusUrl), dataDir };
  }

  async edgeStatus(edge: Edge): Promise<EdgeStatus> {
    const res = await fetch(`${edge.statusUrl}/status`);
    const status = (await res.json()) as EdgeStatus;
    for (const w of status.workloads) if (w.status?.pid) this.workloadPids.add(w.status.pid);
    return status;
  }

  /** The edge's workload `name` when it is Running, else undefined (for waitFor). */
  async runningWorkload(edge: Edge, name: string): Promise<EdgeStatus['workloads'][number] | undefined> {
    const w = (await this.edgeStatus(edge)).workloads.find((x) => x.name === name);
    return w?.status?.state === 'Running' ? w : undefined;
  }

  /** Stops every process started here, then kills any workload process group still alive. */
  async cleanup(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
    for (const pid of this.workloadPids) {
      if (isAlive(pid)) { try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ } }
    }
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** Minimal REST client for tests (edgectl has the real one). */
export function api(cloud: Pick<Cloud, 'url' | 'token'>) {
  const call = async <T = unknown>(method: string, path: string, body?: unknown, token = cloud.token): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${cloud.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  return {
    call,
    async token(node: string, ttlSeconds?: number): Promise<string> {
      const r = await call<{ token: string }>('POST', '/tokens', { node, ...(ttlSeconds ? { ttlSeconds } : {}) });
      if (r.status !== 201) throw new Error(`token create failed: ${JSON.stringify(r.body)}`);
      return r.body.token;
    },
  };
}

/** A process workload template that records each start in a file and then sleeps. */
export function markerApp(name: string, marker: string, selector: Record<string, unknown> = {}, extraEnv: Record<string, string> = {}) {
  return {
    kind: 'App',
    metadata: { name },
    spec: {
      selector,
      template: {
        runtime: 'process', command: '/bin/sh',
        args: ['-c', `echo "started $EF_VERSION" >> "${marker}"; exec sleep 600`],
        env: { EF_VERSION: 'v1', ...extraEnv },
        restartPolicy: 'Always',
      },
    },
  };
}
