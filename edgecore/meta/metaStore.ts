import type Database from 'better-sqlite3';
import { type SyncFrame, type UpstreamEntry, type Device, type Workload } from '../../protocol/index.js';
import type { EdgePart } from '../part.js';
import type { RecordKeeper } from '../runtime/runtime.js';
import { DesiredTable, type StoredObjects, type SyncResult } from './desired.js';
import { Outbox, resolveLimits, type EnqueueOptions, type NewUpstreamEntry, type OutboxLimits, type OutboxStats, type UpstreamBody, type UpstreamKind } from './outbox.js';
import { SqliteRecordKeeper } from './records.js';
import { openDatabase, StateTable, STATE_KEYS, type Db } from './schema.js';

export { ForeignObjectError, RevisionRegressionError, canonicalJson, diffDesired, type SyncResult } from './desired.js';
export { DEFAULT_OUTBOX_LIMITS, type NewUpstreamEntry, type OutboxLimits, type OutboxStats, type UpstreamBody, type UpstreamKind } from './outbox.js';
export { SqliteRecordKeeper } from './records.js';

/** Well-known keys of the kv table. */
export const META_KEYS = {
  /** This node's name; once set, sync frames carrying other nodes' objects are refused. */
  node: 'node',
  /** The credential issued at join. */
  credential: 'credential',
  /** The edgecore version that last kept this database (see noteAgentVersion). */
  agentVersion: 'agentVersion',
} as const;

export interface MetaStoreOptions extends OutboxLimits {
  /** Clock for outbox ages, in ms since the epoch. Defaults to Date.now. */
  now?: () => number;
}

/**
 * The edge's local database: desired workloads, runtime records, the upstream outbox, the epoch
 * and small key/values. It is what lets the edge run with no cloud link and pick up where it
 * left off after a restart. One process owns the file; every method is synchronous.
 */
export class MetaStore implements EdgePart {
  readonly name = 'meta';
  readonly records: RecordKeeper;
  private readonly state: StateTable;
  private readonly desired: DesiredTable;
  private readonly outbox: Outbox;
  private readonly getKv: Database.Statement<[string], { value: string }>;
  private readonly setKv: Database.Statement<[string, string]>;

  private constructor(private readonly db: Db, opts: MetaStoreOptions) {
    this.state = new StateTable(db);
    this.desired = new DesiredTable(db, this.state);
    this.outbox = new Outbox(db, this.state, resolveLimits(opts), opts.now ?? Date.now);
    this.records = new SqliteRecordKeeper(db);
    this.getKv = db.prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?');
    this.setKv = db.prepare<[string, string]>(
      'INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  }

  /** Opens or creates the database at `path` (`:memory:` works for throwaway use). */
  static open(path: string, opts: MetaStoreOptions = {}): MetaStore {
    const db = openDatabase(path);
    try {
      return new MetaStore(db, opts);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * The open database, for a part of the edge that keeps its tables in this file so that its
   * writes and the outbox entries they cause are one commit (the device hub: twins + outbox).
   * Use it synchronously; the MetaStore owns it and closes it, so close its users first.
   */
  get database(): Db {
    return this.db;
  }

  /** Random id born with the database file; a new file means a new epoch. */
  epoch(): string {
    const epoch = this.state.get(STATE_KEYS.epoch);
    if (epoch === undefined) throw new Error('meta database has no epoch');
    return epoch;
  }

  getValue(key: string): string | undefined {
    return this.getKv.get(key)?.value;
  }

  setValue(key: string, value: string): void {
    this.setKv.run(key, value);
  }

  /** Newest revision committed by applySync; 0 on a new database. */
  lastRevision(): number {
    return this.desired.lastRevision();
  }

  /**
   * Commits a sync frame in one durable transaction and sets lastRevision to its revision; ack
   * the revision only after this returns. `snapshot` makes the desired set exactly the frame's
   * objects; `delta` applies puts and deletes (deletes name the Workload's metadata.name).
   * Returns the apps (spec.app) that were added or changed and those removed.
   *
   * Throws, changing nothing, if the frame's revision is older than lastRevision (the cloud
   * never sends that; an equal revision is a harmless resend) or if a node name is set in kv
   * `node` and an object is bound to another node. Parsing the frame is the link's job.
   */
  applySync(frame: SyncFrame): SyncResult {
    return this.desired.apply(frame, this.getValue(META_KEYS.node));
  }

  /** Desired workloads, sorted by app name. */
  desiredWorkloads(): Workload[] {
    return this.desired.list();
  }

  desiredWorkload(app: string): Workload | undefined {
    return this.desired.get(app);
  }

  /** Devices bound to this node, as the cloud last sent them. */
  /** The routes bound to this node, and those stored that this edgecore cannot read. */
  desiredRoutes(): ReturnType<DesiredTable['readRoutes']> {
    return this.desired.readRoutes();
  }

  desiredDevices(): Device[] {
    return this.desired.listDevices();
  }

  /** Desired workloads, read once: those this edgecore can read and those it cannot (the readers above skip them). */
  readDesiredWorkloads(): StoredObjects<Workload> {
    return this.desired.readWorkloads();
  }

  /** Desired devices, read once (see readDesiredWorkloads). */
  readDesiredDevices(): StoredObjects<Device> {
    return this.desired.readDevices();
  }

  /**
   * Forgets how far the desired state is synced, so the next connection replays it from the
   * start (or gets a snapshot) and every stored object is written again.
   */
  resetSyncCursor(): void {
    this.state.setNumber(STATE_KEYS.lastRevision, 0);
  }

  /**
   * Records the edgecore version keeping this database. A different one than last time (an
   * upgrade or a downgrade) forgets the sync cursor, so the cloud sends every object again: the
   * version before stored them without the fields it did not know (docs/sync.md, Version skew),
   * and the cloud never resends what was acked. Returns the version before when it changed
   * and something had been synced ('unknown' for a database older than this record).
   */
  noteAgentVersion(version: string): string | undefined {
    const before = this.getValue(META_KEYS.agentVersion);
    if (before === version) return undefined;
    const synced = this.lastRevision() > 0;
    // Cursor first: a crash between the two writes resyncs once more rather than never.
    if (synced) this.resetSyncCursor();
    this.setValue(META_KEYS.agentVersion, version);
    return synced ? before ?? 'unknown' : undefined;
  }

  /**
   * Persists an upstream entry and returns its seq. A `workloadStatus` replaces any pending
   * status with the same key; events accumulate within the outbox limits.
   */
  enqueue<K extends UpstreamKind>(kind: K, key: string, body: UpstreamBody<K>): number {
    return this.outbox.enqueue(kind, key, body);
  }

  /** Like enqueue() for several entries, in order and in one transaction; none is stored if one is invalid. */
  enqueueMany(entries: readonly NewUpstreamEntry[], options?: EnqueueOptions): number[] {
    return this.outbox.enqueueMany(entries, options);
  }

  /** Up to `limit` pending entries, oldest first; unreadable ones are dropped and counted (Outbox.pending). */
  pending(limit: number, onUnreadable?: (seq: number, error: string) => void): UpstreamEntry[] {
    return this.outbox.pending(limit, onUnreadable);
  }

  /** Removes every pending entry with seq ≤ `seq`; returns how many. */
  ackUpTo(seq: number): number {
    return this.outbox.ackUpTo(seq);
  }

  outboxStats(): OutboxStats {
    return this.outbox.outboxStats();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** As an edge part: open from the start (MetaStore.open), closed last. */
  async start(): Promise<void> {}

  async stop(): Promise<void> { this.close(); }
}
