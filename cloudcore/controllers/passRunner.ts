import type { Logger } from 'pino';
import { ConflictError, NotFoundError } from '../store/store.js';

/**
 * Runs a controller's reconcile pass the way every controller here wants it: changes arriving
 * within `batchMs` share one pass; a change during a pass (or a pass that hit a conflict and
 * called `again()`) runs one more pass right after; a failed pass is retried a second later.
 * Never two passes at once, so a pass may read-then-write without racing itself.
 */
export class PassRunner {
  private running = false;
  private rerun = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Resolves when the current pass (and any it triggered) has finished; for tests and shutdown. */
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly log: Logger,
    private readonly what: string,
    private readonly batchMs = 20,
  ) {}

  /** Something changed: schedule a pass (or one more after the current one). */
  trigger(): void {
    if (this.stopped) return;
    if (this.running) { this.rerun = true; return; }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.idle = this.run();
    }, this.batchMs);
  }

  /** Called from inside a pass whose view turned out stale (a conflict): run once more. */
  again(): void { this.rerun = true; }

  /**
   * A write from inside a pass: a conflict or a vanished object means the pass's view was
   * stale, so it is skipped (undefined) and another pass will redo it from fresh reads.
   */
  async tolerate<T>(write: () => Promise<T>): Promise<T | undefined> {
    try {
      return await write();
    } catch (err) {
      if (err instanceof ConflictError || err instanceof NotFoundError) { this.again(); return undefined; }
      throw err;
    }
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      do {
        this.rerun = false;
        await this.pass();
      } while (this.rerun && !this.stopped);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, `${this.what} pass failed; retrying`);
      setTimeout(() => this.trigger(), 1000).unref();
    } finally {
      this.running = false;
    }
  }

  /** No passes after this; resolves once the current one finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.idle;
  }
}
