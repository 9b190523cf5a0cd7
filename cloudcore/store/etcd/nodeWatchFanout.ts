import type { IEvent } from 'etcd3';
import type { Kind } from '../../../protocol/index.js';
import { type StoreError, type Watch, type WatchErrorHandler, type WatchEvent } from '../store.js';
import { decodeWatchEvent, EtcdWatch, type EtcdWatchDeps } from './etcdWatch.js';

/**
 * Every node watch of one replica served from ONE etcd watch over `n/` (all node index keys),
 * with a bounded in-memory history so a session resuming from revision R replays from memory.
 *
 * Why: an edge session's watch was an etcd watch of its own, and etcd3 opens watchers one at a
 * time on its stream, each a round trip; with ten thousand edges linking to a replica at once the
 * queue outlived the hello deadline and links stalled (30,000 nodes over 3 replicas never linked,
 * docs/benchmarks.md). KubeEdge's cloudcore does the same: one informer per kind, fanned out.
 *
 * History: every `n/` event with revision > `floor` is kept (newest `capacity` events; the
 * stream starts at the compacted revision, so right after start that is etcd's whole retained
 * history). A subscriber from R ≥ floor gets its node's kept events after R, then live ones, in
 * revision order, once each; one from R < floor is not served here (the store gives it an etcd
 * watch of its own, which also says GoneError when R is compacted).
 *
 * Failure: if the shared watch ends (etcd unreachable past the outage allowance, or compacted
 * while behind), every subscriber gets that error through onError, as its own watch would have;
 * the next subscribe starts a new shared watch.
 */

interface KeptEvent {
  revision: number;
  node: string;
  kind: Kind;
  raw: IEvent;
}

interface Subscriber {
  node: string;
  kind: Kind | undefined;
  /** Highest revision delivered to it: replay and live delivery never overlap. */
  last: number;
  onEvent: (event: WatchEvent) => void;
  onError: WatchErrorHandler | undefined;
  closed: boolean;
}

export interface NodeWatchFanoutDeps extends Omit<EtcdWatchDeps, 'onEnded'> {
  /** Revision etcd's history starts after (EdgeFleet's compaction record): where the shared watch starts. */
  compactedRevision: () => Promise<number>;
  /** Most events kept in memory for replay. */
  capacity: number;
}

export class NodeWatchFanout {
  private shared: EtcdWatch | undefined;
  private starting: Promise<void> | undefined;
  /** Kept history, oldest first; `head` is the first live index (evicted ones are cleared lazily). */
  private history: KeptEvent[] = [];
  private head = 0;
  private readonly byNode = new Map<string, KeptEvent[]>();
  /** Every change under `n/` with revision > floor is in `history`. */
  private floor = 0;
  private readonly subscribers = new Map<string, Set<Subscriber>>();

  constructor(private readonly deps: NodeWatchFanoutDeps) {}

  /** Number of node watches served (for metrics). */
  get size(): number {
    let n = 0;
    for (const set of this.subscribers.values()) n += set.size;
    return n;
  }

  /**
   * Serves a watch of `node` from `fromRevision`, or returns undefined when the history does not
   * reach back that far (the caller opens an etcd watch of its own).
   */
  async subscribe(node: string, kind: Kind | undefined, fromRevision: number, onEvent: (event: WatchEvent) => void, onError?: WatchErrorHandler): Promise<Watch | undefined> {
    await this.ensureStarted();
    if (fromRevision < this.floor) return undefined;
    const subscriber: Subscriber = { node, kind, last: fromRevision, onEvent, onError, closed: false };
    // Replay and registration in one synchronous step: nothing arrives in between.
    for (const kept of this.byNode.get(node) ?? []) {
      if (kept.revision > fromRevision && this.deliverTo(subscriber, kept) === 'ended') return { close: () => {} };
    }
    let set = this.subscribers.get(node);
    if (set === undefined) this.subscribers.set(node, (set = new Set()));
    set.add(subscriber);
    return { close: () => this.unsubscribe(subscriber) };
  }

  close(): void {
    this.shared?.close();
    this.reset();
  }

  private ensureStarted(): Promise<void> {
    if (this.shared !== undefined) return Promise.resolve();
    this.starting ??= this.start().finally(() => { this.starting = undefined; });
    return this.starting;
  }

  private async start(): Promise<void> {
    let from = await this.deps.compactedRevision();
    // etcd may have compacted past EdgeFleet's record (its own compaction, or another store's on
    // the cluster): it would accept the watch and cancel it right after, ending every subscriber.
    // Start after what etcd itself says; subscribers behind that get GoneError from the store.
    if (await this.deps.compaction.goneAfter(from)) from = await this.deps.compaction.learnFromEtcd();
    await this.startFrom(from);
  }

  private async startFrom(from: number): Promise<void> {
    const watch = new EtcdWatch({ ...this.deps, onEnded: () => {} }, { prefix: this.deps.ctx.keys.allNodeIndexes(), fromRevision: from },
      (raw, revision) => { this.received(raw, revision); return undefined; },
      (error) => this.ended(watch, error));
    await watch.start();
    this.floor = from;
    this.shared = watch;
  }

  private received(raw: IEvent, revision: number): void {
    const at = this.where(raw.kv.key.toString('utf8'));
    if (at === undefined) return;
    const kept: KeptEvent = { revision, node: at.node, kind: at.kind, raw };
    this.history.push(kept);
    let forNode = this.byNode.get(at.node);
    if (forNode === undefined) this.byNode.set(at.node, (forNode = []));
    forNode.push(kept);
    this.evict();
    for (const subscriber of [...(this.subscribers.get(at.node) ?? [])]) this.deliverTo(subscriber, kept);
  }

  /** Keeps at most `capacity` events, whole revisions at a time (floor is a complete revision). */
  private evict(): void {
    while (this.history.length - this.head > this.deps.capacity) {
      const oldest = this.history[this.head]!.revision;
      while (this.head < this.history.length && this.history[this.head]!.revision === oldest) {
        const gone = this.history[this.head++]!;
        const forNode = this.byNode.get(gone.node)!;
        forNode.shift();
        if (forNode.length === 0) this.byNode.delete(gone.node);
      }
      this.floor = oldest;
    }
    // Drop the evicted prefix now and then rather than shifting one element at a time.
    if (this.head > 1024 && this.head * 2 > this.history.length) {
      this.history = this.history.slice(this.head);
      this.head = 0;
    }
  }

  private deliverTo(subscriber: Subscriber, kept: KeptEvent): 'delivered' | 'skipped' | 'ended' {
    if (subscriber.closed || kept.revision <= subscriber.last) return 'skipped';
    if (subscriber.kind !== undefined && subscriber.kind !== kept.kind) return 'skipped';
    const decoded = decodeWatchEvent(this.deps.ctx, kept.raw, kept.revision);
    if (!decoded) return 'skipped';
    if ('unreadable' in decoded) {
      // As its own watch would: end this node's watch; its session lists again. Others go on.
      this.end(subscriber, decoded.unreadable);
      return 'ended';
    }
    // One txn writes one object, so at most one key of a node per revision: revision is the identity.
    subscriber.last = kept.revision;
    try {
      subscriber.onEvent(decoded.event);
    } catch (error) {
      try { this.deps.onListenerError(error); } catch { /* nothing left to tell */ }
    }
    return 'delivered';
  }

  private ended(watch: EtcdWatch, error: StoreError): void {
    if (this.shared !== watch) return;
    const all = [...this.subscribers.values()].flatMap((set) => [...set]);
    this.reset();
    for (const subscriber of all) this.end(subscriber, error);
  }

  private end(subscriber: Subscriber, error: StoreError): void {
    this.unsubscribe(subscriber);
    try {
      subscriber.onError?.(error);
    } catch (listenerError) {
      try { this.deps.onListenerError(listenerError); } catch { /* nothing left to tell */ }
    }
  }

  private unsubscribe(subscriber: Subscriber): void {
    subscriber.closed = true;
    const set = this.subscribers.get(subscriber.node);
    set?.delete(subscriber);
    if (set?.size === 0) this.subscribers.delete(subscriber.node);
  }

  private reset(): void {
    this.shared = undefined;
    this.history = [];
    this.head = 0;
    this.byNode.clear();
    this.subscribers.clear();
    this.floor = 0;
  }

  /** Node and kind of a node index key `<p>n/<node>/<Kind>/<name>`. */
  private where(key: string): { node: string; kind: Kind } | undefined {
    const id = this.deps.ctx.keys.parse(key);
    if (!id) return undefined;
    const rest = key.slice(this.deps.ctx.keys.allNodeIndexes().length);
    const node = rest.slice(0, rest.indexOf('/'));
    return node === '' ? undefined : { node, kind: id.kind };
  }
}
