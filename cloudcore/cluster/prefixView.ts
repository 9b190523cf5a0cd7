import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { cancelQuietly, errorMessage, openWatch, rangePrefix } from './etcdCalls.js';
import { ViewState, type ViewChange, type ViewEntry } from './viewState.js';

/**
 * A live cached copy of one key prefix: one range read, then one prefix watch from the next
 * revision. On any watch trouble (a server cancel such as compaction, a cut stream) it does not
 * let etcd3 resume on its own: it lists again at R and watches from R+1 (anchors §3.5.4). A
 * periodic resync lists again anyway, to repair an event etcd 3.4.23 dropped without an error.
 * The view answers from memory: a registry lookup is never an etcd call.
 */

export interface PrefixViewOptions {
  /** Called with every change the view applies, in order (the initial list included). */
  onChange?(changes: readonly ViewChange[]): void;
  onWarning?(message: string): void;
  /** Resync period (default 60 s; 0 = none). */
  resyncMs?: number;
  /** Pause before listing again after a failure. */
  retryMs?: number;
}

export class PrefixView {
  private readonly state = new ViewState();
  private watcher: Watcher | undefined;
  private closed = false;
  private restarting = false;
  private readonly resyncTimer: NodeJS.Timeout | undefined;
  private readonly prefixText: string;

  private constructor(private readonly client: Etcd3, private readonly prefix: Buffer, private readonly opts: PrefixViewOptions) {
    this.prefixText = prefix.toString('utf8');
    const resyncMs = opts.resyncMs ?? 60_000;
    if (resyncMs > 0) this.resyncTimer = setInterval(() => void this.resync(), resyncMs);
  }

  /** Lists and starts watching; rejects if etcd cannot be read (the caller decides whether to retry). */
  static async start(client: Etcd3, prefix: Buffer, opts: PrefixViewOptions = {}): Promise<PrefixView> {
    const view = new PrefixView(client, prefix, opts);
    try {
      await view.listAndWatch();
    } catch (err) {
      view.close();
      throw err;
    }
    return view;
  }

  get(key: string): ViewEntry | undefined {
    return this.state.get(key);
  }

  values(): IterableIterator<ViewEntry> {
    return this.state.values();
  }

  get size(): number {
    return this.state.size;
  }

  /** The revision the view is complete up to. */
  get revision(): number {
    return this.state.revision;
  }

  private entryOf(kv: IKeyValue): ViewEntry {
    return {
      key: kv.key.toString('utf8').slice(this.prefixText.length),
      value: kv.value.toString('utf8'),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      lease: kv.lease,
    };
  }

  private publish(changes: readonly ViewChange[]): void {
    if (changes.length > 0 && !this.closed) this.opts.onChange?.(changes);
  }

  private async listAndWatch(): Promise<void> {
    const { kvs, revision } = await rangePrefix(this.client, this.prefix);
    if (this.closed) return;
    this.publish(this.state.replace(kvs.map((kv) => this.entryOf(kv)), revision));
    const watcher = await openWatch(this.client, this.prefix, revision + 1, { prefix: true });
    if (this.closed) {
      cancelQuietly(watcher);
      return;
    }
    this.watcher = watcher;
    watcher.on('put', (kv) => {
      const change = this.state.applyPut(this.entryOf(kv));
      if (change) this.publish([change]);
    });
    watcher.on('delete', (kv) => {
      const change = this.state.applyDelete(this.entryOf(kv).key, Number(kv.mod_revision));
      if (change) this.publish([change]);
    });
    watcher.on('error', (err) => this.restart(`the watch on ${this.prefixText} was cancelled: ${err.message}`));
    watcher.on('disconnected', (err) => this.restart(`the watch on ${this.prefixText} was cut: ${err.message}`));
  }

  /** Drops the watch, then lists and watches again until that works (or the view is closed). */
  private restart(why: string): void {
    if (this.closed || this.restarting) return;
    this.restarting = true;
    this.opts.onWarning?.(`${why}; listing again`);
    if (this.watcher) cancelQuietly(this.watcher);
    this.watcher = undefined;
    void (async () => {
      while (!this.closed) {
        try {
          await this.listAndWatch();
          break;
        } catch (err) {
          this.opts.onWarning?.(`could not list and watch ${this.prefixText}: ${errorMessage(err)}`);
          await new Promise((resolve) => setTimeout(resolve, this.opts.retryMs ?? 500));
        }
      }
      this.restarting = false;
    })();
  }

  /** A list that repairs what the watch may have lost; the watch itself stays. */
  private async resync(): Promise<void> {
    if (this.closed || this.restarting) return;
    try {
      const { kvs, revision } = await rangePrefix(this.client, this.prefix);
      if (!this.closed && !this.restarting) this.publish(this.state.replace(kvs.map((kv) => this.entryOf(kv)), revision));
    } catch (err) {
      this.opts.onWarning?.(`resync of ${this.prefixText} failed: ${errorMessage(err)}`);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.resyncTimer);
    if (this.watcher) cancelQuietly(this.watcher);
    this.watcher = undefined;
  }
}
