import type { Etcd3, IEvent, IWatchResponse, Watcher } from 'etcd3';
import { tombstoneOf } from '../objectMeta.js';
import { StoreError, UnavailableError, UnreadableError, type Watch, type WatchErrorHandler, type WatchEvent, type WatchOptions } from '../store.js';
import type { EtcdCompaction } from './etcdCompaction.js';
import type { EtcdContext } from './etcdContext.js';

/**
 * One etcd prefix watch (`o/`, `o/<Kind>/`, `n/<node>/`, or `n/` for a replica's shared node watch,
 * nodeWatchFanout.ts), with prev_kv so a DELETED carries the last state. etcd3 multiplexes every
 * watcher of the client on one gRPC stream. `deliver` gets each new raw event once, in order;
 * `decodeWatchEvent` turns one into a Store event.
 *
 * Defences against Debian's etcd 3.4.23 and the etcd3 client (research anchors §3.3/§3.4):
 * - dedupe by revision and key: an event at or below what was delivered is dropped (3.4.24 sends
 *   duplicates; one txn may put several keys under a wide prefix, a move two under `n/`);
 * - after a stream error the watch resumes from OUR last delivered revision (+ 1 once that
 *   revision is known complete): etcd3 resumes from the header revision of the last response,
 *   which during a catch-up replay is ahead of the events it actually sent, and would skip the rest;
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

export type Decoded = { event: WatchEvent } | { unreadable: UnreadableError } | undefined;

/** What a watch does with one new raw event; an error returned ends the watch with it. */
export type RawDelivery = (raw: IEvent, revision: number) => StoreError | undefined;

export interface PrefixWatchOptions {
  prefix: string;
  /** Deliver changes with revision > fromRevision. */
  fromRevision: number;
}

export class EtcdWatch implements Watch {
  /** Highest revision delivered: the dedupe line. */
  private last: number;
  /**
   * Keys delivered at `last`, while more of that revision may follow (a txn's several keys);
   * null when `last` is complete (the starting point).
   */
  private keysAtLast: Set<string> | null = null;
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
    opts: PrefixWatchOptions,
    private readonly deliver: RawDelivery,
    private readonly onError: WatchErrorHandler | undefined,
  ) {
    this.last = opts.fromRevision;
    this.prefix = opts.prefix;
  }

  /** A Store watch: one prefix watch whose events are decoded and handed to `onEvent`. */
  static forStore(deps: EtcdWatchDeps, opts: WatchOptions, onEvent: (event: WatchEvent) => void, onError: WatchErrorHandler | undefined): EtcdWatch {
    const { keys } = deps.ctx;
    const prefix = opts.node === undefined ? keys.objects(opts.kind) : keys.nodeObjects(opts.node, opts.kind);
    return new EtcdWatch(deps, { prefix, fromRevision: opts.fromRevision }, (raw, revision) => {
      const decoded = decodeWatchEvent(deps.ctx, raw, revision);
      if (!decoded) return undefined;
      // Skipping it would leave the watcher wrong about that object for good: end the watch, the caller lists again.
      if ('unreadable' in decoded) return decoded.unreadable;
      try {
        onEvent(decoded.event);
      } catch (error) {
        try { deps.onListenerError(error); } catch { /* the error sink itself failed; nothing left to tell */ }
      }
      return undefined;
    }, onError);
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
    if (this.progress >= this.last) return this.progress + 1;
    return this.keysAtLast === null ? this.last + 1 : this.last;
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
      if (this.closed) return;
      const revision = Number(raw.kv.mod_revision);
      const key = raw.kv.key.toString('utf8');
      if (revision < this.last) continue;
      if (revision === this.last && (this.keysAtLast === null || this.keysAtLast.has(key))) continue;
      const error = this.deliver(raw, revision);
      if (error) {
        this.fail(error);
        return;
      }
      if (revision > this.last) {
        this.last = revision;
        this.keysAtLast = new Set();
      }
      this.keysAtLast!.add(key);
    }
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

/** One raw etcd event as a Store event; undefined for a key outside the object layout. */
export function decodeWatchEvent(ctx: EtcdContext, raw: IEvent, revision: number): Decoded {
  const { keys, codec } = ctx;
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
