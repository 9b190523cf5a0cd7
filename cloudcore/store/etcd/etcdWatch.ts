import type { Etcd3, IEvent, IWatchResponse, Watcher } from 'etcd3';
import { tombstoneOf } from '../objectMeta.js';
import { StoreError, UnavailableError, UnreadableError, type Watch, type WatchErrorHandler, type WatchEvent, type WatchOptions } from '../store.js';
import type { EtcdCompaction } from './etcdCompaction.js';
import type { EtcdContext } from './etcdContext.js';

/**
 * One Store watch over one etcd prefix watch (`o/`, `o/<Kind>/`, `n/<node>/` or `n/<node>/<Kind>/`),
 * with prev_kv so a DELETED carries the last state. etcd3 multiplexes every watcher of the client
 * on one gRPC stream.
 *
 * Defences against Debian's etcd 3.4.23 and the etcd3 client (research anchors §3.3/§3.4):
 * - dedupe by revision: a revision at or below the last one delivered is dropped (3.4.24 sends
 *   duplicates; one txn is at most one event per watched prefix, so revision is the identity);
 * - after a stream error the watch resumes from OUR last delivered revision + 1: etcd3 resumes from
 *   the header revision of the last response, which during a catch-up replay is ahead of the
 *   events it actually sent, and would skip the rest;
 * - a cancel (compaction while behind, or anything else) is checked against compaction: compacted
 *   → onError(GoneError), else the watch is opened again from last + 1;
 * - an engine unreachable for longer than `outageMs` → onError(UnavailableError).
 * Listener exceptions go to onListenerError and never reach etcd3 (which would rethrow them).
 */

export interface EtcdWatchDeps {
  client: Etcd3;
  ctx: EtcdContext;
  compaction: EtcdCompaction;
  onListenerError: (error: unknown) => void;
  /** How long a watch waits for a lost stream to come back before it ends with UnavailableError. */
  outageMs: number;
  /** Called when the watch ends (closed or failed), so the store forgets it. */
  onEnded: (watch: EtcdWatch) => void;
}

type Decoded = { event: WatchEvent } | { unreadable: UnreadableError } | undefined;

export class EtcdWatch implements Watch {
  /** Highest revision delivered: the dedupe line. */
  private last: number;
  /**
   * Highest revision a progress notification vouched for (sent only to a caught-up watcher: every
   * change up to it has been sent). Used only to resume after a stream error, so a quiet watch does
   * not reach back into compacted history; never to drop an event.
   */
  private progress = 0;
  /** The etcd watcher now serving this watch (a cancel makes a new one). */
  private attached: Watcher | undefined;
  private closed = false;
  private outageTimer: NodeJS.Timeout | undefined;
  private readonly prefix: string;

  constructor(
    private readonly deps: EtcdWatchDeps,
    private readonly opts: WatchOptions,
    private readonly onEvent: (event: WatchEvent) => void,
    private readonly onError: WatchErrorHandler | undefined,
  ) {
    this.last = opts.fromRevision;
    const { keys } = deps.ctx;
    this.prefix = opts.node === undefined ? keys.objects(opts.kind) : keys.nodeObjects(opts.node, opts.kind);
  }

  /** Opens the etcd watcher; resolves once etcd has accepted it. */
  async start(): Promise<void> {
    await this.attach();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.outageTimer);
    const watcher = this.attached;
    this.attached = undefined;
    if (watcher) void watcher.cancel().catch(() => { /* the stream is gone already: nothing to cancel */ });
    this.deps.onEnded(this);
  }

  private attach(): Promise<Watcher> {
    const watcher = this.deps.client.watch().prefix(this.prefix).startRevision(String(this.resumePoint())).withPreviousKV().watcher();
    watcher.on('data', (res: IWatchResponse) => this.received(res));
    watcher.on('disconnected', () => this.disconnected(watcher));
    this.attached = watcher;
    let accepted = false;
    return new Promise<Watcher>((resolve, reject) => {
      const timer = setTimeout(() => {
        void watcher.cancel().catch(() => {});
        // etcd3 creates watchers one at a time on the shared stream, so a burst of watches (every
        // edge reconnecting at once) queues: the wait is the outage allowance, not one call deadline.
        const endpoints = this.deps.ctx.calls.endpoints.join(',');
        reject(new UnavailableError(`etcd at ${endpoints} did not accept a watch within ${Math.round(this.deps.outageMs / 1000)} s (no quorum or unreachable)`));
      }, this.deps.outageMs);
      watcher.once('connected', () => { accepted = true; clearTimeout(timer); resolve(watcher); });
      watcher.on('connected', () => { clearTimeout(this.outageTimer); this.outageTimer = undefined; });
      watcher.on('error', (error: Error) => {
        clearTimeout(timer);
        // Refused outright (etcd can answer a create with a cancel): a compaction says GoneError.
        if (!accepted) {
          void this.deps.compaction.goneAfter(this.resumePoint() - 1)
            .then((gone) => reject(gone ?? this.deps.ctx.calls.storeError(error)), (checkError: unknown) => reject(this.deps.ctx.calls.storeError(checkError)));
        }
        else if (this.attached === watcher) void this.cancelled(error);
      });
    });
  }

  private resumePoint(): number {
    return Math.max(this.last, this.progress) + 1;
  }

  private received(res: IWatchResponse): void {
    if (this.closed) return;
    if (res.events.length === 0) {
      // A progress notification (only sent to a watcher that is caught up): nothing up to this
      // revision is pending, so a later resume need not reach back before it.
      if (!res.created && !res.canceled && !res.fragment) this.progress = Math.max(this.progress, Number(res.header.revision));
      return;
    }
    for (const raw of res.events) {
      const revision = Number(raw.kv.mod_revision);
      if (revision <= this.last || this.closed) continue;
      const decoded = this.decode(raw, revision);
      if (!decoded) continue;
      if ('unreadable' in decoded) {
        // Skipping it would leave the watcher wrong about that object for good: end the watch, the caller lists again.
        this.fail(decoded.unreadable);
        return;
      }
      this.last = revision;
      try {
        this.onEvent(decoded.event);
      } catch (error) {
        try { this.deps.onListenerError(error); } catch { /* the error sink itself failed; nothing left to tell */ }
      }
    }
  }

  private decode(raw: IEvent, revision: number): Decoded {
    const { keys, codec } = this.deps.ctx;
    const id = keys.parse(raw.kv.key.toString('utf8'));
    if (!id) return undefined;
    if (raw.type === 'Put') {
      const read = codec.decode(id.kind, id.name, raw.kv.value, revision);
      if ('reason' in read) return { unreadable: new UnreadableError([{ ...id, reason: read.reason }]) };
      // A key's version restarts at 1 when it is created: for a node's index key that is also a move in.
      return { event: { type: raw.kv.version === '1' ? 'ADDED' : 'MODIFIED', object: read.object, revision } };
    }
    const prev = raw.prev_kv ? codec.decode(id.kind, id.name, raw.prev_kv.value, revision) : undefined;
    const object = prev && 'object' in prev ? prev.object : tombstoneOf(id.kind, id.name, revision);
    return { event: { type: 'DELETED', object, revision } };
  }

  private disconnected(watcher: Watcher): void {
    if (this.closed || this.attached !== watcher) return;
    // etcd3 reattaches from the header revision of the last response; resume from what was delivered.
    watcher.request.start_revision = String(this.resumePoint());
    this.outageTimer ??= setTimeout(() => {
      this.fail(new UnavailableError(`${this.deps.ctx.calls.storeError(new Error('the watch stream is lost')).message}; `
        + `no stream for ${Math.round(this.deps.outageMs / 1000)} s`));
    }, this.deps.outageMs);
  }

  private async cancelled(cause: Error): Promise<void> {
    this.attached = undefined;
    if (this.closed) return;
    try {
      const gone = await this.deps.compaction.goneAfter(this.resumePoint() - 1);
      if (gone) return this.fail(gone);
      if (this.closed) return;
      const watcher = await this.attach();
      if (this.closed) void watcher.cancel().catch(() => {});
    } catch (error) {
      this.fail(error instanceof StoreError ? error : this.deps.ctx.calls.storeError(cause));
    }
  }

  private fail(error: StoreError): void {
    if (this.closed) return;
    this.close();
    try {
      this.onError?.(error);
    } catch (listenerError) {
      try { this.deps.onListenerError(listenerError); } catch { /* nothing left to tell */ }
    }
  }
}
