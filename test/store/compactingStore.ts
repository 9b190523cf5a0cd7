import type { AnyObject, Kind } from '../../protocol/index.js';
import type {
  ListOptions, ObjectOf, Store, UnreadableObject, Watch, WatchErrorHandler, WatchEvent, WatchOptions, WriteGuard,
} from '../../cloudcore/store/store.js';

/**
 * A store whose every write is followed by its backend's `compact()`, for the conformance
 * suite's compaction tests on a backend that compacts only when asked (etcd: the leader calls
 * compact() periodically). SQLite compacts inside its writes and needs no wrapper.
 */
export class CompactingStore implements Store {
  constructor(private readonly inner: Store & { compact(): Promise<number> }) {}

  private async compacting<T>(write: Promise<T>): Promise<T> {
    const result = await write;
    await this.inner.compact();
    return result;
  }

  revision(): Promise<number> { return this.inner.revision(); }
  compactedRevision(): Promise<number> { return this.inner.compactedRevision(); }
  get<K extends Kind>(kind: K, name: string): Promise<ObjectOf<K> | undefined> { return this.inner.get(kind, name); }
  list<K extends Kind>(kind: K, opts?: ListOptions): Promise<{ items: ObjectOf<K>[]; revision: number }> { return this.inner.list(kind, opts); }
  create<T extends AnyObject>(obj: T): Promise<T> { return this.compacting(this.inner.create(obj)); }
  update<T extends AnyObject>(obj: T): Promise<T> { return this.compacting(this.inner.update(obj)); }
  delete<K extends Kind>(kind: K, name: string, opts?: { resourceVersion?: number }): Promise<ObjectOf<K>> {
    return this.compacting(this.inner.delete(kind, name, opts));
  }
  deleteUnreadable(kind: Kind, name: string): Promise<{ revision: number }> { return this.compacting(this.inner.deleteUnreadable(kind, name)); }
  listUnreadable(): Promise<UnreadableObject[]> { return this.inner.listUnreadable(); }
  watch(opts: WatchOptions, onEvent: (event: WatchEvent) => void, onError?: WatchErrorHandler): Promise<Watch> {
    return this.inner.watch(opts, onEvent, onError);
  }
  guarded(guard: WriteGuard): Store { return this.inner.guarded(guard); }
  close(): Promise<void> { return this.inner.close(); }
}
