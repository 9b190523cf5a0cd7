import type { AnyObject, Kind } from '../../protocol/index.js';
import { unreadableMessage, type UnreadableObject } from './objectMeta.js';

export type { UnreadableObject } from './objectMeta.js';

/**
 * The revisioned object store: the one place cloudcore keeps state.
 *
 * Every write (create, update, delete) bumps ONE global revision and stamps it on the object
 * as `metadata.resourceVersion`, like etcd/kine. Watches replay every change after a given
 * revision and then follow live writes. One backend exists: SQLite (`sqliteStore.ts`). Every
 * backend must pass `test/store/conformance.ts` (`sqliteStore.test.ts` runs it).
 */

export type ObjectOf<K extends Kind> = Extract<AnyObject, { kind: K }>;

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent<T extends AnyObject = AnyObject> {
  type: WatchEventType;
  /** For DELETED: the last state, with resourceVersion set to the delete's revision. */
  object: T;
  /** Revision of this change (equals object.metadata.resourceVersion). */
  revision: number;
}

export interface ListOptions {
  /** Only objects bound to this node (see `boundNode`). */
  node?: string;
}

export interface WatchOptions {
  kind?: Kind;
  /**
   * Only changes to objects bound to this node, as a set: an update that moves an object to
   * another node is, for the node it leaves, a DELETED (the object's last state there, at the
   * move's revision) and, for the node it joins, an ADDED; watchers without a node filter see
   * one MODIFIED. Replays from before the move include it the same way.
   */
  node?: string;
  /** Replay every matching change with revision > fromRevision, then follow live. */
  fromRevision: number;
}

export interface Watch {
  close(): void;
}

/**
 * Called once if a live watch ends on its own (a distributed backend lost its history: the
 * watch's next revision was compacted away while it was behind, or the engine cancelled it).
 * The watch is closed by then; the caller lists again and watches from the list's revision.
 * The error is a StoreError (GoneError for compaction, 503 for an unreachable engine).
 */
export type WatchErrorHandler = (error: StoreError) => void;

/**
 * A condition a write commits under, checked by the backend in the same transaction as the
 * write (an etcd compare), never by a timer: a replica that lost leadership, or a node session
 * another replica took over, cannot write on stale authority. Keys are cluster keys outside the
 * object space (see `etcd/keys.ts`); a single-process backend has no other writer and accepts
 * every guard.
 */
export interface WriteGuard {
  /** The cluster key the condition is on, relative to the store's prefix (e.g. `cluster/leader`). */
  key: string;
  /** The key's create revision must equal this; 0 means the key must not exist. */
  createRevision: number;
  /** Why the write may no longer happen, for the 503 when the guard fails (e.g. "this replica is no longer the leader"). */
  lostMessage: string;
}

export interface Store {
  /** Current global revision (0 for an empty store). */
  revision(): Promise<number>;
  /** Oldest revision a watch can still resume from; older requests throw GoneError. */
  compactedRevision(): Promise<number>;

  get<K extends Kind>(kind: K, name: string): Promise<ObjectOf<K> | undefined>;
  list<K extends Kind>(kind: K, opts?: ListOptions): Promise<{ items: ObjectOf<K>[]; revision: number }>;

  /** Fails with ConflictError if an object of that kind and name exists. Sets uid, creationTimestamp, generation=1. */
  create<T extends AnyObject>(obj: T): Promise<T>;
  /**
   * Replaces an object. If `obj.metadata.resourceVersion` is set and differs from the stored
   * one, fails with ConflictError (optimistic concurrency). NotFoundError if absent.
   * `generation` is bumped when `spec` changed; uid and creationTimestamp are preserved.
   */
  update<T extends AnyObject>(obj: T): Promise<T>;
  /** NotFoundError if absent; ConflictError if `resourceVersion` is given and stale. Returns the deleted object. */
  delete<K extends Kind>(kind: K, name: string, opts?: { resourceVersion?: number }): Promise<ObjectOf<K>>;

  /**
   * Removes an object the store holds but cannot read (UnreadableError on every other read and
   * write of it), the one way to repair such an object short of editing the backend by hand.
   * NotFoundError if absent; ConflictError if it is readable (delete it the normal way).
   * Watchers see a DELETED event whose object has only kind, name and an empty spec or data.
   */
  deleteUnreadable(kind: Kind, name: string): Promise<{ revision: number }>;
  /** Every object the store holds but cannot read, by kind then name (reads every object: for repairs, not hot paths). */
  listUnreadable(): Promise<UnreadableObject[]>;

  /**
   * Calls `onEvent` for each matching change after `fromRevision`, in revision order, first the
   * replay, then live. Throws GoneError if fromRevision < compactedRevision().
   */
  watch(opts: WatchOptions, onEvent: (event: WatchEvent) => void, onError?: WatchErrorHandler): Promise<Watch>;

  /**
   * The same store, whose every write (create, update, delete, deleteUnreadable) also requires
   * `guard`; a write whose guard fails throws FencedError and changes nothing. Reads and watches
   * are the store's own. Closing the view does nothing (close the store).
   */
  guarded(guard: WriteGuard): Store;

  close(): Promise<void>;
}

/** Node an object is bound to, for per-node lists and watches; undefined for fleet-wide kinds. */
export function boundNode(obj: AnyObject): string | undefined {
  switch (obj.kind) {
    case 'Workload': return obj.spec.nodeName;
    case 'Device': return obj.spec.nodeName;
    case 'Event': return obj.spec.node;
    case 'NodeRoute': return obj.spec.nodeName;
    default: return undefined;
  }
}

export class StoreError extends Error {
  constructor(message: string, readonly statusCode: number) { super(message); }
}
/** 409: exists already, or a stale resourceVersion. */
export class ConflictError extends StoreError { constructor(m: string) { super(m, 409); } }
export class NotFoundError extends StoreError { constructor(m: string) { super(m, 404); } }
/** 503: a write's guard no longer holds (WriteGuard); nothing was written. */
export class FencedError extends StoreError { constructor(m: string) { super(m, 503); } }
/** 503: the backend cannot be reached or has no quorum; nothing is known to be written. */
export class UnavailableError extends StoreError { constructor(m: string) { super(m, 503); } }
/** 410: the requested revision was compacted away; relist. */
export class GoneError extends StoreError { constructor(m: string) { super(m, 410); } }
/**
 * 500: objects the read touched are stored but cannot be read back. The read fails rather than
 * leaving them out: a controller that took a missing App for a deleted one would remove its
 * workloads from every node. `deleteUnreadable` removes them.
 */
export class UnreadableError extends StoreError {
  constructor(readonly objects: readonly UnreadableObject[]) { super(unreadableMessage(objects), 500); }
}
