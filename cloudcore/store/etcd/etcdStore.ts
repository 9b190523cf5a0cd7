import type { Etcd3 } from 'etcd3';
import { KINDS, type AnyObject, type Kind } from '../../../protocol/index.js';
import type { SecretSealer } from '../secretSealing.js';
import {
  StoreError, UnreadableError,
  type ListOptions, type ObjectOf, type Store, type UnreadableObject, type Watch, type WatchErrorHandler, type WatchEvent, type WatchOptions, type WriteGuard,
} from '../store.js';
import { newEtcdClient, parseEtcdEndpoints, readEtcdCredentials, type EtcdTlsFiles } from './etcdClient.js';
import { EtcdCompaction } from './etcdCompaction.js';
import { rangeOne, rangePrefix, type EtcdContext } from './etcdContext.js';
import { EtcdCalls } from './etcdErrors.js';
import { resealEtcdStore } from './etcdReseal.js';
import { EtcdWatch } from './etcdWatch.js';
import { NodeWatchFanout } from './nodeWatchFanout.js';
import { assertStorableName, createObject, deleteObject, deleteUnreadableObject, updateObject } from './etcdWrites.js';
import { DEFAULT_PREFIX, EtcdKeys } from './keys.js';
import { ObjectCodec } from './objectCodec.js';

/**
 * The Store on etcd v3, for several cloudcore replicas over one etcd cluster (issue 23). Key
 * layout in keys.ts; writes in etcdWrites.ts (one txn each); watches in etcdWatch.ts; compaction
 * in etcdCompaction.ts. Revisions are etcd's: an object's resourceVersion is its key's
 * mod_revision, `revision()` the cluster's header revision (other prefixes move it too).
 *
 * Live delivery is etcd's: a write made through another replica reaches this one's watchers, in
 * revision order, a moment after it commits (unlike SQLite, not before the write's promise settles).
 */

export const DEFAULT_CALL_TIMEOUT_MS = 5000;
export const DEFAULT_ETCD_MAX_EVENTS = 100_000;

export interface EtcdStoreOptions {
  /** Client URLs of the members (`--etcd-endpoints`). */
  endpoints: string[];
  /** Every key of this store lives under it (default `/edgefleet/`); must end with "/". */
  prefix?: string;
  /** Seals Secret bodies at rest, as SQLite does. */
  sealer?: SecretSealer;
  tls?: EtcdTlsFiles;
  /** Deadline of every etcd call (default 5000 ms); past it the call fails with UnavailableError. */
  callTimeoutMs?: number;
  /** Revisions kept for watch replay: `compact()` compacts etcd to revision() − maxEvents (default 100,000). */
  maxEvents?: number;
  /** Receives exceptions thrown by watch listeners; by default they are dropped. */
  onListenerError?: (error: unknown) => void;
}

export async function openEtcdStore(opts: EtcdStoreOptions): Promise<EtcdStore> {
  const callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const maxEvents = opts.maxEvents ?? DEFAULT_ETCD_MAX_EVENTS;
  for (const [name, value] of Object.entries({ callTimeoutMs, maxEvents })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  const { secure } = parseEtcdEndpoints(opts.endpoints);
  const credentials = await readEtcdCredentials(opts.tls, secure);
  const client = newEtcdClient(opts.endpoints, credentials, Math.max(500, Math.floor(callTimeoutMs / 3)));
  const store = new EtcdStore(client, new EtcdKeys(opts.prefix ?? DEFAULT_PREFIX), opts, callTimeoutMs, maxEvents);
  try {
    await store.revision();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/** What a store and its guarded views share. */
interface Shared {
  readonly client: Etcd3;
  readonly ctx: EtcdContext;
  readonly compaction: EtcdCompaction;
  readonly watches: Set<EtcdWatch>;
  /** Every node watch (an edge session's) over one shared etcd watch; see nodeWatchFanout.ts. */
  readonly nodeWatches: NodeWatchFanout;
  readonly onListenerError: (error: unknown) => void;
  readonly sealer: SecretSealer | undefined;
  closed: boolean;
}

export class EtcdStore implements Store {
  private readonly shared: Shared;
  /** A guarded view's guards, all required by every write (none: the store itself). */
  private readonly guards: readonly WriteGuard[];

  constructor(client: Etcd3, keys: EtcdKeys, opts: EtcdStoreOptions, callTimeoutMs: number, maxEvents: number);
  constructor(shared: Shared, guards: readonly WriteGuard[]);
  constructor(...args: [Etcd3, EtcdKeys, EtcdStoreOptions, number, number] | [Shared, readonly WriteGuard[]]) {
    if (args.length === 2) {
      [this.shared, this.guards] = args;
      return;
    }
    const [client, keys, opts, callTimeoutMs, maxEvents] = args;
    const ctx: EtcdContext = { kv: client.kv, keys, calls: new EtcdCalls(opts.endpoints, callTimeoutMs), codec: new ObjectCodec(opts.sealer) };
    const compaction = new EtcdCompaction(ctx, client.watchClient, maxEvents);
    const onListenerError = opts.onListenerError ?? (() => {});
    const nodeWatches = new NodeWatchFanout({
      client, ctx, compaction, onListenerError, outageMs: WATCH_OUTAGE_CALLS * callTimeoutMs, capacity: maxEvents,
      compactedRevision: () => compaction.compactedRevision(),
    });
    this.shared = { client, ctx, compaction, watches: new Set(), nodeWatches, onListenerError, sealer: opts.sealer, closed: false };
    this.guards = [];
  }

  /** The etcd3 connection, for the cluster modules (leader election, registries) to share. */
  get client(): Etcd3 {
    return this.shared.client;
  }

  get prefix(): string {
    return this.shared.ctx.keys.prefix;
  }

  /** Number of open watches (for metrics). */
  get watchCount(): number {
    return this.shared.watches.size + this.shared.nodeWatches.size;
  }

  private get ctx(): EtcdContext {
    return this.shared.ctx;
  }

  async revision(): Promise<number> {
    this.assertOpen();
    return (await rangeOne(this.ctx, this.ctx.keys.compacted())).revision;
  }

  async compactedRevision(): Promise<number> {
    this.assertOpen();
    return this.shared.compaction.compactedRevision();
  }

  /** Compacts etcd to revision() − maxEvents when that is above the recorded compaction (the leader calls this periodically). */
  async compact(): Promise<number> {
    this.assertOpen();
    return this.shared.compaction.compact();
  }

  /**
   * Seals Secrets stored plain or under an older key again under the first key (after a key
   * rotation). For one replica to call (the leader), not every replica at open: see etcdReseal.ts.
   */
  async resealSecrets(): Promise<{ objects: number }> {
    this.assertOpen();
    if (!this.shared.sealer) throw new StoreError('no secret key file: nothing to seal with', 400);
    return resealEtcdStore(this.ctx, this.shared.sealer);
  }

  async get<K extends Kind>(kind: K, name: string): Promise<ObjectOf<K> | undefined> {
    this.assertOpen();
    const { kv } = await rangeOne(this.ctx, this.ctx.keys.object(kind, name));
    return kv ? (this.ctx.codec.decodeOrThrow(kind, name, kv.value, Number(kv.mod_revision)) as ObjectOf<K>) : undefined;
  }

  async list<K extends Kind>(kind: K, opts: ListOptions = {}): Promise<{ items: ObjectOf<K>[]; revision: number }> {
    this.assertOpen();
    const { keys, codec } = this.ctx;
    const res = await rangePrefix(this.ctx, opts.node === undefined ? keys.objects(kind) : keys.nodeObjects(opts.node, kind));
    const items: AnyObject[] = [];
    const unreadable: UnreadableObject[] = [];
    for (const kv of res.kvs) {
      const id = keys.parse(kv.key.toString('utf8'));
      if (!id) continue;
      const read = codec.decode(id.kind, id.name, kv.value, Number(kv.mod_revision));
      if ('object' in read) items.push(read.object);
      else unreadable.push({ ...id, reason: read.reason });
    }
    if (unreadable.length > 0) throw new UnreadableError(unreadable);
    return { items: items as ObjectOf<K>[], revision: res.revision };
  }

  async create<T extends AnyObject>(obj: T): Promise<T> {
    this.assertWritable(obj);
    return createObject(this.ctx, obj, this.guards);
  }

  async update<T extends AnyObject>(obj: T): Promise<T> {
    this.assertWritable(obj);
    return updateObject(this.ctx, obj, this.guards);
  }

  async delete<K extends Kind>(kind: K, name: string, opts: { resourceVersion?: number } = {}): Promise<ObjectOf<K>> {
    this.assertOpen();
    return (await deleteObject(this.ctx, kind, name, opts.resourceVersion, this.guards)) as ObjectOf<K>;
  }

  async deleteUnreadable(kind: Kind, name: string): Promise<{ revision: number }> {
    this.assertOpen();
    return deleteUnreadableObject(this.ctx, kind, name, this.guards);
  }

  async listUnreadable(): Promise<UnreadableObject[]> {
    this.assertOpen();
    const { keys, codec } = this.ctx;
    const found: UnreadableObject[] = [];
    for (const kv of (await rangePrefix(this.ctx, keys.objects())).kvs) {
      const id = keys.parse(kv.key.toString('utf8'));
      if (!id) continue;
      const read = codec.decode(id.kind, id.name, kv.value, Number(kv.mod_revision));
      if ('reason' in read) found.push({ ...id, reason: read.reason });
    }
    return found;
  }

  async watch(opts: WatchOptions, onEvent: (event: WatchEvent) => void, onError?: WatchErrorHandler): Promise<Watch> {
    this.assertOpen();
    if (!Number.isInteger(opts.fromRevision) || opts.fromRevision < 0) {
      throw new StoreError(`fromRevision must be a non-negative integer, got ${opts.fromRevision}`, 400);
    }
    await this.shared.compaction.assertWatchable(opts.fromRevision);
    const { shared } = this;
    if (opts.node !== undefined) {
      const served = await shared.nodeWatches.subscribe(opts.node, opts.kind, opts.fromRevision, onEvent, onError);
      if (served) return served;
    }
    const watch = EtcdWatch.forStore({
      client: shared.client, ctx: shared.ctx, compaction: shared.compaction, onListenerError: shared.onListenerError,
      outageMs: WATCH_OUTAGE_CALLS * shared.ctx.calls.timeoutMs, onEnded: (w) => shared.watches.delete(w),
    }, { ...opts }, onEvent, onError);
    shared.watches.add(watch);
    try {
      await watch.start();
    } catch (error) {
      watch.close();
      throw error;
    }
    return watch;
  }

  /** Guards chain: a view of a view requires both guards (the leader's and a node session's, say). */
  guarded(guard: WriteGuard): Store {
    return new EtcdStore(this.shared, [...this.guards, { ...guard }]);
  }

  /** Closes every watch and the etcd connection; a guarded view's close does nothing. */
  async close(): Promise<void> {
    if (this.guards.length > 0 || this.shared.closed) return;
    this.shared.closed = true;
    for (const watch of [...this.shared.watches]) watch.close();
    this.shared.nodeWatches.close();
    this.shared.client.close();
  }

  private assertOpen(): void {
    if (this.shared.closed) throw new StoreError('store is closed', 503);
  }

  private assertWritable(obj: AnyObject): void {
    this.assertOpen();
    if (!KINDS.includes(obj.kind)) throw new StoreError(`unknown kind ${JSON.stringify(obj.kind)}`, 400);
    if (typeof obj.metadata?.name !== 'string' || obj.metadata.name === '') {
      throw new StoreError(`${obj.kind} without metadata.name`, 400);
    }
    assertStorableName(obj);
  }
}

/**
 * A watch whose stream is lost waits this many call deadlines for etcd to come back (30 s by
 * default) before it ends with UnavailableError: long enough to ride out a member's restart or a
 * leader election, short enough that an edge session is not left silent for long.
 */
const WATCH_OUTAGE_CALLS = 6;
