import type { AnyObject, Kind } from '../../protocol/index.js';
import type { Watch, WatchEvent, WatchEventType } from './store.js';

/**
 * In-process fan-out of committed changes to watchers. Storage-agnostic: a backend hands it the
 * replay for a new watcher and publishes each change right after it commits.
 *
 * Watchers are indexed by node and by kind so a write costs O(watchers that match it): with
 * thousands of per-node watches open (one per connected edge), a Workload write touches only the
 * watches of its own node.
 *
 * Delivery goes through one FIFO queue drained by whoever enqueued first. A listener that writes
 * to the store (re-entrantly) therefore only enqueues; every watcher still sees changes in
 * revision order, and a new watcher's replay is queued ahead of any change committed after it.
 */

/** A committed change as the log keeps it; the body stays serialized so each delivery parses its own copy. */
export interface LoggedChange {
  revision: number;
  type: WatchEventType;
  kind: Kind;
  /** `boundNode` of the object, null for fleet-wide kinds. */
  node: string | null;
  body: string;
  /**
   * Set when this write changed the object's node binding (an update that moved it): the node it
   * was bound to before (null: none) and its last state there, stamped with this revision. For
   * watchers of that node the change is the object's delete; for those of the new node, its add.
   */
  rebound?: Rebound | null;
}

export interface Rebound {
  fromNode: string | null;
  body: string;
}

export interface WatchFilter {
  kind?: Kind;
  node?: string;
  fromRevision: number;
}

interface Watcher {
  readonly filter: WatchFilter;
  readonly onEvent: (event: WatchEvent) => void;
  /** Highest revision delivered (or skipped as already seen); guards against any overlap of replay and live. */
  lastRevision: number;
  open: boolean;
}

interface Delivery {
  watcher: Watcher;
  change: LoggedChange;
}

export function matchesFilter(filter: WatchFilter, change: LoggedChange): boolean {
  if (filter.kind !== undefined && filter.kind !== change.kind) return false;
  if (filter.node !== undefined && filter.node !== change.node && filter.node !== change.rebound?.fromNode) return false;
  return change.revision > filter.fromRevision;
}

/**
 * What a matching change looks like to a watcher. A node's watcher follows the set of objects
 * bound to that node, so a write that moves an object out of the set is a DELETED (with the
 * object's last state there) and one that moves it in is an ADDED, as a Kubernetes watch with a
 * field selector reports it. Without this the old node would never hear that the object left.
 */
export function eventTypeAndBody(filter: WatchFilter, change: LoggedChange): { type: WatchEventType; body: string } {
  const rebound = change.rebound;
  if (filter.node === undefined || !rebound) return { type: change.type, body: change.body };
  if (change.node === filter.node) return { type: 'ADDED', body: change.body };
  return { type: 'DELETED', body: rebound.body };
}

export class WatchHub {
  /** Watchers with a node filter (and maybe a kind filter too). */
  private readonly byNode = new Map<string, Set<Watcher>>();
  /** Watchers with only a kind filter. */
  private readonly byKind = new Map<Kind, Set<Watcher>>();
  private readonly unfiltered = new Set<Watcher>();
  private queue: Delivery[] = [];
  private queueHead = 0;
  private draining = false;
  private watcherCount = 0;

  /** `onListenerError` sees exceptions thrown by listeners; they never reach the writer. */
  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  get size(): number {
    return this.watcherCount;
  }

  /**
   * Registers a watcher. `replay` must hold every matching change up to the moment of this call,
   * in revision order; it is delivered before anything published afterwards.
   */
  add(filter: WatchFilter, replay: readonly LoggedChange[], onEvent: (event: WatchEvent) => void): Watch {
    const watcher: Watcher = { filter: { ...filter }, onEvent, lastRevision: filter.fromRevision, open: true };
    this.bucketOf(watcher).add(watcher);
    this.watcherCount++;
    for (const change of replay) {
      if (matchesFilter(filter, change)) this.queue.push({ watcher, change });
    }
    this.drain();
    return { close: () => this.remove(watcher) };
  }

  /** Queues `change` for every matching watcher and delivers, unless a delivery is already running. */
  publish(change: LoggedChange): void {
    if (change.node !== null) this.enqueueMatching(this.byNode.get(change.node), change);
    const fromNode = change.rebound?.fromNode;
    if (fromNode !== undefined && fromNode !== null) this.enqueueMatching(this.byNode.get(fromNode), change);
    this.enqueueMatching(this.byKind.get(change.kind), change);
    this.enqueueMatching(this.unfiltered, change);
    this.drain();
  }

  closeAll(): void {
    for (const set of [...this.byNode.values(), ...this.byKind.values(), this.unfiltered]) {
      for (const watcher of set) watcher.open = false;
    }
    this.byNode.clear();
    this.byKind.clear();
    this.unfiltered.clear();
    this.watcherCount = 0;
  }

  private enqueueMatching(watchers: Set<Watcher> | undefined, change: LoggedChange): void {
    if (!watchers) return;
    for (const watcher of watchers) {
      if (matchesFilter(watcher.filter, change)) this.queue.push({ watcher, change });
    }
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queueHead < this.queue.length) {
        const { watcher, change } = this.queue[this.queueHead++]!;
        if (!watcher.open || change.revision <= watcher.lastRevision) continue;
        watcher.lastRevision = change.revision;
        this.deliver(watcher, change);
      }
    } finally {
      this.queue = [];
      this.queueHead = 0;
      this.draining = false;
    }
  }

  private deliver(watcher: Watcher, change: LoggedChange): void {
    const { type, body } = eventTypeAndBody(watcher.filter, change);
    const event: WatchEvent = { type, object: JSON.parse(body) as AnyObject, revision: change.revision };
    try {
      watcher.onEvent(event);
    } catch (error) {
      try { this.onListenerError(error); } catch { /* the error sink itself failed; nothing left to tell */ }
    }
  }

  private bucketOf(watcher: Watcher): Set<Watcher> {
    const { node, kind } = watcher.filter;
    if (node !== undefined) return getOrCreate(this.byNode, node);
    if (kind !== undefined) return getOrCreate(this.byKind, kind);
    return this.unfiltered;
  }

  private remove(watcher: Watcher): void {
    if (!watcher.open) return;
    watcher.open = false;
    this.watcherCount--;
    const { node, kind } = watcher.filter;
    const bucket = this.bucketOf(watcher);
    bucket.delete(watcher);
    // Drop empty buckets so nodes that come and go do not leak map entries.
    if (bucket.size === 0) {
      if (node !== undefined) this.byNode.delete(node);
      else if (kind !== undefined) this.byKind.delete(kind);
    }
  }
}

function getOrCreate<K, V>(map: Map<K, Set<V>>, key: K): Set<V> {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  return set;
}
