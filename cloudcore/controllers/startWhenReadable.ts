import type { Logger } from 'pino';
import { StoreError, UnreadableError } from '../store/store.js';

export interface Controller {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a controller, or, while the store cannot read an object it lists, keeps cloudcore up
 * without it and retries every `retryMs`. Failing the whole process instead would take the API
 * down too, and the API is how an operator removes the object (`DELETE /unreadable/…`). The
 * controller neither acts on a partial picture meanwhile (a missing App read as a deleted one
 * would remove its workloads) nor does anything at all: edges keep what they last received.
 */
export class StartWhenReadable implements Controller {
  private timer: NodeJS.Timeout | undefined;
  private attempt: Promise<void> | undefined;
  private stopped = false;
  /** Why the last attempt failed; undefined while none has (or since one succeeded). */
  private lastError: string | undefined;

  constructor(private readonly name: string, private readonly controller: Controller, private readonly log: Logger, private readonly retryMs = 5000) {}

  async start(): Promise<void> {
    this.attempt = this.tryStart();
    await this.attempt;
  }

  private async tryStart(): Promise<void> {
    try {
      await this.controller.start();
      if (this.lastError !== undefined) this.log.info({ controller: this.name }, 'controller started: the store reads again');
      this.lastError = undefined;
    } catch (err) {
      // A store that does not answer now (etcd without quorum, a timeout) is retried like an
      // unreadable object: a leader must not sit without its controllers until re-elected.
      if (err instanceof StoreError && err.statusCode === 503) {
        this.log.warn({ controller: this.name, err: err.message, retryInMs: this.retryMs }, 'controller cannot start: the store does not answer; retrying');
        if (!this.stopped) {
          this.timer = setTimeout(() => { this.attempt = this.tryStart().catch((e: unknown) => this.log.error({ controller: this.name, err: (e as Error).message }, 'controller start failed')); }, this.retryMs);
          this.timer.unref();
        }
        return;
      }
      if (!(err instanceof UnreadableError)) throw err;
      // Once per distinct cause, not every retry: deleting one object may reveal the next.
      if (err.message !== this.lastError) {
        this.log.error({ controller: this.name, err: err.message, retryInMs: this.retryMs },
          'controller cannot start while the store holds unreadable objects; list them with `edgectl get unreadable`, delete each with `edgectl delete unreadable KIND NAME`');
      }
      this.lastError = err.message;
      if (this.stopped) return;
      this.timer = setTimeout(() => { this.attempt = this.tryStart().catch((e: unknown) => this.log.error({ controller: this.name, err: (e as Error).message }, 'controller start failed')); }, this.retryMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.attempt?.catch(() => undefined);
    await this.controller.stop();
  }
}
