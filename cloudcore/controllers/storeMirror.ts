import type { AnyObject, Kind } from '../../protocol/index.js';
import type { ObjectOf, Store, Watch, WatchErrorHandler, WatchEvent } from '../store/store.js';

/**
 * An in-memory copy of some kinds of the store, kept current by watches (an informer, in
 * Kubernetes terms). A controller that re-plans after every change reads this instead of
 * listing and parsing the whole fleet on each pass: at 10,000 nodes listing was most of
 * cloudcore's CPU during a rollout. Objects are shared with other watchers: read, never mutate.
 */
export class StoreMirror<K extends Kind> {
  private readonly objects = new Map<Kind, Map<string, AnyObject>>();
  private readonly watches: Watch[] = [];

  private constructor() {}

  /**
   * Lists each kind, then follows its changes from exactly that list's revision; `onEvent` runs
   * after the copy is updated. `onError` hears of a watch that ended on its own (a distributed
   * store compacted past it): the copy no longer follows the store and must be opened again.
   */
  static async open<K extends Kind>(store: Store, kinds: readonly K[], onEvent: (event: WatchEvent) => void, onError?: WatchErrorHandler): Promise<StoreMirror<K>> {
    const mirror = new StoreMirror<K>();
    try {
      await mirror.follow(store, kinds, onEvent, onError);
    } catch (err) {
      mirror.close(); // a later kind failed to list: the watches already opened go too
      throw err;
    }
    return mirror;
  }

  private async follow(store: Store, kinds: readonly K[], onEvent: (event: WatchEvent) => void, onError?: WatchErrorHandler): Promise<void> {
    for (const kind of kinds) {
      const { items, revision } = await store.list(kind);
      const byName = new Map<string, AnyObject>(items.map((o) => [o.metadata.name, o]));
      this.objects.set(kind, byName);
      this.watches.push(await store.watch({ kind, fromRevision: revision }, (event) => {
        const object = event.object;
        if (event.type === 'DELETED') byName.delete(object.metadata.name);
        else byName.set(object.metadata.name, object);
        onEvent(event);
      }, onError));
    }
  }

  items<T extends K>(kind: T): ObjectOf<T>[] {
    // Only objects of `kind` are ever put under `kind` (one watch per kind).
    return [...(this.objects.get(kind)?.values() ?? [])] as ObjectOf<T>[];
  }

  close(): void {
    for (const w of this.watches) w.close();
  }
}
