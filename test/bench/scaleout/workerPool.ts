import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ReplyEnvelopeSchema, type WorkerRequest } from './ipc.js';

/**
 * The coordinator's side of the edge workers: forks them, sends requests, matches replies by
 * id and parses each result with the schema the caller names.
 */

const WORKER_MAIN = fileURLToPath(new URL('./edgeWorker.js', import.meta.url));

interface Pending {
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

export class EdgeWorker {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  constructor(readonly index: number, private readonly child: ChildProcess, log: (line: string) => void) {
    child.on('message', (raw: unknown) => {
      const parsed = ReplyEnvelopeSchema.safeParse(raw);
      if (!parsed.success) {
        log(`worker ${index}: a message that does not parse: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
        return;
      }
      const message = parsed.data;
      if (message.kind === 'progress') {
        log(`worker ${index}: ${message.line}`);
        return;
      }
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (message.ok) waiting.resolve(message.result);
      else waiting.reject(new Error(`worker ${index}: ${message.error}`));
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        for (const p of this.pending.values()) p.reject(new Error(`worker ${index} exited (${signal ?? code}) with a request open`));
        this.pending.clear();
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  request<S extends z.ZodType>(request: WorkerRequest, schema: S): Promise<z.infer<S>> {
    if (this.exitCode !== undefined) return Promise.reject(new Error(`worker ${this.index} has exited`));
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, request });
    }).then((result) => {
      const parsed = schema.safeParse(result);
      if (!parsed.success) throw new Error(`worker ${this.index}: unexpected answer to ${request.type}: ${parsed.error.issues[0]?.message}`);
      return parsed.data;
    });
  }

  /** Asks the worker to close its links and exit; SIGKILL if it has not within `graceMs`. */
  async stop(graceMs = 40_000): Promise<void> {
    if (this.exitCode !== undefined) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    this.request({ type: 'stop' }, z.unknown()).catch(() => undefined);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Forks `count` workers; each gets a V8 heap big enough for ~15,000 edges. */
export function forkWorkers(count: number, heapMiB: number, log: (line: string) => void): EdgeWorker[] {
  return Array.from({ length: count }, (_, i) => {
    const child = fork(WORKER_MAIN, [], {
      execArgv: [`--max-old-space-size=${heapMiB}`],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new EdgeWorker(i, child, log);
  });
}

/** The same request to every worker, results in worker order. */
export function everyWorker<S extends z.ZodType>(workers: EdgeWorker[], request: WorkerRequest, schema: S): Promise<z.infer<S>[]> {
  return Promise.all(workers.map((w) => w.request(request, schema)));
}
