import type { Kind } from '../../../protocol/index.js';
import { notFoundMessage } from '../../store/objectMeta.js';
import { NotFoundError, type ObjectOf, type Store } from '../../store/store.js';
import type { WatchStreams } from '../views/watchStream.js';

/** What every resource route plugin is registered with. */
export interface ResourceRoutesOptions {
  store: Store;
  watches: WatchStreams;
}

/** `store.get` that answers 404 when the object is absent. */
export async function getOrNotFound<K extends Kind>(store: Store, kind: K, name: string): Promise<ObjectOf<K>> {
  const obj = await store.get(kind, name);
  if (!obj) throw new NotFoundError(notFoundMessage(kind, name));
  return obj;
}
