import type { Node } from '../../protocol/index.js';
import { ConflictError, NotFoundError, type ObjectOf, type Store } from './store.js';

/**
 * Read-modify-write with optimistic concurrency: the write carries the resourceVersion it
 * read, so an operator's concurrent change (a label patch, a new desired twin) is never
 * overwritten; a conflict is retried on fresh data. `mutate` returns undefined to skip the
 * write; a vanished object ends the attempt quietly.
 */
export async function readModifyWrite<K extends 'Node' | 'Workload' | 'Device'>(
  store: Store, kind: K, name: string, mutate: (current: ObjectOf<K>) => ObjectOf<K> | undefined, attempts = 8,
): Promise<ObjectOf<K> | undefined> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const current = await store.get(kind, name);
    if (!current) return undefined;
    const next = mutate(current);
    if (!next) return current;
    try {
      return await store.update(next);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  throw new Error(`could not update ${kind.toLowerCase()} ${name}: too many concurrent writes`);
}

/** A Node's status through `readModifyWrite`. */
export function updateNodeStatus(store: Store, name: string, mutate: (node: Node) => Node['status'] | undefined): Promise<Node | undefined> {
  return readModifyWrite(store, 'Node', name, (node) => {
    const status = mutate(node);
    return status ? { ...node, status } : undefined;
  });
}
