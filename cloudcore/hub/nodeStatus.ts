import type { Node } from '../../protocol/index.js';
import { ConflictError, NotFoundError, type Store } from '../store/store.js';

/**
 * Read-modify-write of a Node's status with optimistic concurrency: an operator patching
 * labels at the same moment must not be overwritten, so conflicts are retried on fresh data.
 * `mutate` returns undefined to skip the write.
 */
export async function updateNodeStatus(store: Store, name: string, mutate: (node: Node) => Node['status'] | undefined): Promise<Node | undefined> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const node = await store.get('Node', name);
    if (!node) return undefined;
    const status = mutate(node);
    if (!status) return node;
    try {
      return await store.update({ ...node, status });
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  throw new Error(`could not update status of node ${name}: too many concurrent writes`);
}
