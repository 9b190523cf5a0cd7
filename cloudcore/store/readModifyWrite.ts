import type { Kind, Node } from '../../protocol/index.js';
import { kindNoun } from './objectMeta.js';
import { ConflictError, NotFoundError, type ObjectOf, type Store } from './store.js';

/**
 * Read-modify-write with optimistic concurrency, the one loop every writer of a shared object
 * uses (API handlers, the hub, controllers), whatever the backend behind `Store`: the write
 * carries the resourceVersion it read, so a concurrent change (an operator's label patch, the
 * hub's status report) is never overwritten; a lost race is retried on a fresh read.
 */
export interface ReadModifyWriteOptions {
  /** Reads before giving up (default 8). */
  attempts?: number;
  /**
   * The resourceVersion the caller's change was based on (a client's `metadata.resourceVersion`):
   * a different stored one is a 409 at once, and a lost race is not retried — the client re-reads.
   */
  expectedVersion?: number | undefined;
  /** The error when every attempt lost its race; default a 409 saying so. */
  exhausted?: () => Error;
}

/** With `absent`, a missing object (at the read or the write) throws what it gives instead of answering undefined. */
export interface ReadModifyWriteOrFail extends ReadModifyWriteOptions {
  absent: () => Error | Promise<Error>;
}

/** `change` returns the object to write, or undefined to write nothing (the current object is then the answer). */
export type ObjectChange<K extends Kind> = (current: ObjectOf<K>) => ObjectOf<K> | undefined | Promise<ObjectOf<K> | undefined>;

export function readModifyWrite<K extends Kind>(store: Store, kind: K, name: string, change: ObjectChange<K>, opts: ReadModifyWriteOrFail): Promise<ObjectOf<K>>;
export function readModifyWrite<K extends Kind>(store: Store, kind: K, name: string, change: ObjectChange<K>, opts?: ReadModifyWriteOptions): Promise<ObjectOf<K> | undefined>;
export async function readModifyWrite<K extends Kind>(
  store: Store, kind: K, name: string, change: ObjectChange<K>, opts: Partial<ReadModifyWriteOrFail> = {},
): Promise<ObjectOf<K> | undefined> {
  const { attempts = 8, expectedVersion } = opts;
  const absent = async (): Promise<undefined> => {
    if (opts.absent) throw await opts.absent();
    return undefined;
  };
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const current = await store.get(kind, name);
    if (!current) return absent();
    const stored = current.metadata.resourceVersion;
    if (expectedVersion !== undefined && expectedVersion !== stored) {
      throw new ConflictError(`${kindNoun(kind)} "${name}" has resourceVersion ${stored}, not ${expectedVersion}: re-read it and retry`);
    }
    const changed = await change(current);
    if (!changed) return current;
    // Whatever the change built (e.g. from a client's body), the write is checked against what was read.
    const next = { ...changed, metadata: { ...changed.metadata, resourceVersion: stored } };
    try {
      return await store.update(next);
    } catch (err) {
      if (err instanceof NotFoundError) return absent();
      if (!(err instanceof ConflictError) || expectedVersion !== undefined) throw err;
    }
  }
  throw opts.exhausted?.() ?? new ConflictError(`could not update ${kindNoun(kind)} "${name}": too many concurrent writes; retry`);
}

/** A Node's status through `readModifyWrite`. */
export function updateNodeStatus(store: Store, name: string, mutate: (node: Node) => Node['status'] | undefined): Promise<Node | undefined> {
  return readModifyWrite(store, 'Node', name, (node) => {
    const status = mutate(node);
    return status ? { ...node, status } : undefined;
  });
}
