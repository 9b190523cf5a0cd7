import { fork, type ChildProcess } from 'node:child_process';
import { z } from 'zod';

/**
 * Request/response over the Node IPC channel between the benchmark and its child processes
 * (the hub, the load generators, mosquitto's subscriber). Every child runs serveRpc(); the
 * parent holds a ChildRpc per child. A child whose parent goes away exits by itself, so a
 * crashed benchmark leaves no process behind.
 */

const EnvelopeSchema = z.object({ id: z.number().int(), request: z.unknown() });
const ReplySchema = z.union([
  z.object({ id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: z.number().int(), ok: z.literal(false), error: z.string() }),
]);
const EXIT = '__exit';

/** In a child: answers each request with handler's result; `{cmd: '__exit'}` ends the process. */
export function serveRpc(handler: (request: unknown) => Promise<unknown>): void {
  process.on('disconnect', () => process.exit(1));
  process.on('message', (raw: unknown) => {
    const envelope = EnvelopeSchema.safeParse(raw);
    if (!envelope.success) return;
    const { id, request } = envelope.data;
    if (typeof request === 'object' && request !== null && (request as { cmd?: unknown }).cmd === EXIT) {
      // Exit only once the reply is out; a normal exit lets --cpu-prof write its profile.
      process.send?.({ id, ok: true, result: null }, () => process.exit(0));
      return;
    }
    handler(request).then(
      (result) => process.send?.({ id, ok: true, result }),
      (err: unknown) => process.send?.({ id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
    );
  });
}

export class ChildRpc {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exitCode: number | null | undefined;
  private readonly exited: Promise<number | null>;

  private constructor(readonly name: string, private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (code ${code}, signal ${signal})`));
        this.waiting.clear();
        resolve(this.exitCode);
      });
    });
    child.on('message', (raw: unknown) => {
      const reply = ReplySchema.safeParse(raw);
      if (!reply.success) return;
      const w = this.waiting.get(reply.data.id);
      if (!w) return;
      this.waiting.delete(reply.data.id);
      if (reply.data.ok) w.resolve(reply.data.result);
      else w.reject(new Error(`${name}: ${reply.data.error}`));
    });
  }

  /** Forks a compiled module (stdout/stderr shared with the benchmark). */
  static start(name: string, modulePath: string, execArgv: string[] = []): ChildRpc {
    const child = fork(modulePath, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (child.pid === undefined) throw new Error(`could not start ${name}`);
    return new ChildRpc(name, child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Sends a request and parses the child's answer; rejects after timeoutMs. */
  async call<T>(request: { cmd: string } & Record<string, unknown>, schema: z.ZodType<T>, timeoutMs: number): Promise<T> {
    if (!this.running) throw new Error(`${this.name} is not running`);
    const id = this.nextId++;
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: no answer to ${request.cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
    this.child.send({ id, request });
    return schema.parse(await answer);
  }

  /** Asks the child to exit normally, then kills it (by its pid) if it has not within graceMs. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (!this.running) return this.exitCode ?? null;
    try {
      await this.call({ cmd: EXIT }, z.null(), graceMs);
    } catch {
      // it may already be gone or stuck; the kill below settles it
    }
    const timer = setTimeout(() => { if (this.running) process.kill(this.pid, 'SIGKILL'); }, graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
