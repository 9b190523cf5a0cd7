import type { Logger } from 'pino';
import type { Kind } from '../../protocol/index.js';
import type { Store, StoreError, WatchEvent } from '../store/store.js';
import { PassRunner } from './passRunner.js';
import { StoreMirror } from './storeMirror.js';

/**
 * The loop every mirror-driven controller here runs (an informer and a work queue, in
 * Kubernetes terms): it mirrors some kinds of the store (storeMirror.ts) and, after each change
 * that can move its plan, runs one reconcile pass over the mirror (batched, never two at once:
 * passRunner.ts). A controller says which changes matter (`changes`), what to remember from the
 * first list (`seed`), and how to reconcile; writes go through `tolerate`, so a conflict or a
 * vanished object just brings another pass.
 */
export abstract class MirrorController<K extends Kind> {
  private mirror: StoreMirror<K> | undefined;
  private readonly runner: PassRunner;
  /** Passes run so far (for tests and benchmarks). */
  passes = 0;
  /**
   * Set by a pass that left something only time can move on (a minReadySeconds clock, an
   * offline window): with `tickMs`, a pass is then triggered every tick until one clears it.
   */
  protected waitingOnTime = false;
  private ticker: NodeJS.Timeout | undefined;
  private stopped = false;
  private remirrorTimer: NodeJS.Timeout | undefined;

  protected constructor(
    protected readonly store: Store,
    protected readonly log: Logger,
    private readonly kinds: readonly K[],
    what: string,
    batchMs: number,
    private readonly tickEveryMs?: number,
  ) {
    this.runner = new PassRunner(() => this.pass(), log, what, batchMs);
  }

  async start(): Promise<void> {
    this.mirror = await this.openMirror();
    this.seed(this.mirror);
    this.trigger();
    if (this.tickEveryMs !== undefined) {
      this.ticker = setInterval(() => { if (this.waitingOnTime) this.trigger(); }, this.tickEveryMs);
      this.ticker.unref();
    }
  }

  private openMirror(): Promise<StoreMirror<K>> {
    return StoreMirror.open(this.store, this.kinds, (event) => {
      if (this.changes(event)) this.trigger();
    }, (error) => this.remirror(error));
  }

  /**
   * A watch of the mirror ended on its own (a distributed store compacted past it, or lost its
   * engine): the copy is stale, so no pass runs on it; it is listed afresh (retried until it
   * works or the controller stops), then a pass runs.
   */
  private remirror(error: StoreError): void {
    if (this.stopped) return;
    this.log.warn({ controller: this.constructor.name, err: error.message }, 'controller watch ended: listing again');
    this.mirror?.close();
    this.mirror = undefined;
    const attempt = (delayMs: number) => {
      this.remirrorTimer = setTimeout(() => {
        this.openMirror().then((mirror) => {
          if (this.stopped) return mirror.close();
          this.mirror = mirror;
          this.trigger();
        }, (err: Error) => {
          this.log.warn({ controller: this.constructor.name, err: err.message }, 'controller could not list again; retrying');
          attempt(Math.min(delayMs * 2, 10_000));
        });
      }, delayMs);
      this.remirrorTimer.unref();
    };
    attempt(100);
  }

  /** Something changed that the mirror does not show (time passed, …): schedule a pass. */
  trigger(): void { this.runner.trigger(); }

  /** Whether a watch event can change the plan; every event by default. */
  protected changes(_event: WatchEvent): boolean { return true; }

  /** Runs once on the mirror's first list, before the first pass. */
  protected seed(_mirror: StoreMirror<K>): void {}

  protected abstract reconcile(mirror: StoreMirror<K>): Promise<void>;

  /** A write from inside a pass; undefined when it lost a race (another pass redoes it). */
  protected tolerate<T>(write: () => Promise<T>): Promise<T | undefined> { return this.runner.tolerate(write); }

  private async pass(): Promise<void> {
    this.passes++;
    const mirror = this.mirror;
    if (!mirror) return;
    await this.reconcile(mirror);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.remirrorTimer);
    if (this.ticker) clearInterval(this.ticker);
    this.mirror?.close();
    await this.runner.stop();
  }
}
