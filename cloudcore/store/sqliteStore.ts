import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { KINDS, type AnyObject, type Kind } from '../../protocol/index.js';
import { openWalDatabase } from './sqliteFile.js';
import { openStoredBody, type OpenedBody, type SecretSealer } from './secretSealing.js';
import { resealSqliteStore } from './sqliteReseal.js';
import { LogRetention, type LogRetentionLimits } from './sqliteLogRetention.js';
import { applySchema, EVENT_KIND, prepareStatements, type EventRow, type Statements } from './sqliteSchema.js';
import {
  boundNode, ConflictError, GoneError, NotFoundError, StoreError, UnreadableError,
  type ListOptions, type ObjectOf, type Store, type Watch, type WatchEvent, type WatchOptions, type WriteGuard,
} from './store.js';
import {
  describeObject, notFoundMessage, readStoredObject, staleVersionMessage, stampCreated, stampUpdated, tombstoneOf, type UnreadableObject,
} from './objectMeta.js';
import { WatchHub, type LoggedChange, type Rebound } from './watchHub.js';

/**
 * The default Store backend: one SQLite file in WAL mode.
 *
 * Each write is one IMMEDIATE transaction that bumps the global revision in `meta`, writes the
 * object row and appends the matching row to `events`, so the log never disagrees with the
 * objects. Live watchers are notified right after the commit, synchronously, before the write's
 * promise settles.
 *
 * One process owns the file: live watch delivery is in-process, so writes made by another
 * process reach watchers only through a later replay.
 */

export const DEFAULT_MAX_EVENTS = 100_000;
export const DEFAULT_MAX_EVENT_OBJECT_CHANGES = 10_000;

export interface SqliteStoreOptions {
  /** Database file; its directory is created if missing. `:memory:` works for throwaway stores. */
  path: string;
  /**
   * Log entries about desired state (every kind but Event) kept for watch replay; older ones are
   * compacted away (watching from before them throws GoneError).
   */
  maxEvents?: number;
  /**
   * Log entries about Event objects kept, a window of their own: however many events edges
   * report, they never push desired state out of the log. A watch of kind Event from before this
   * window throws GoneError; other watches replay the Events still held (Events are history,
   * not state: missing old ones never leaves a watcher wrong about an object).
   */
  maxEventObjectChanges?: number;
  /** Receives exceptions thrown by watch listeners; by default they are dropped. */
  onListenerError?: (error: unknown) => void;
  /**
   * Seals Secret bodies at rest (cloudcore always gives one). On open, bodies stored plain or
   * under an older key are sealed again under its first key. Without one, bodies are stored
   * plain and sealed ones cannot be read.
   */
  sealer?: SecretSealer;
}

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  return SqliteStore.open(opts);
}

export class SqliteStore implements Store {
  private readonly hub: WatchHub;
  private closed = false;
  // Each write runs as one IMMEDIATE transaction: taking the write lock up front avoids the
  // SQLITE_BUSY that a deferred read-then-write transaction can hit under a concurrent writer.
  private readonly createTx: (obj: AnyObject) => { object: AnyObject; change: LoggedChange };
  private readonly updateTx: (obj: AnyObject) => { object: AnyObject; change: LoggedChange };
  private readonly deleteTx: (kind: Kind, name: string, rv: number | undefined) => { object: AnyObject; change: LoggedChange };
  private readonly deleteUnreadableTx: (kind: Kind, name: string) => LoggedChange;
  private readonly listTx: (kind: Kind, node: string | undefined) => { items: AnyObject[]; revision: number };
  private readonly replayTx: (opts: WatchOptions) => ReplayedChange[];
  /** Bodies sealed again when the store opened (stored plain, or under a key no longer first). */
  resealed = { objects: 0, events: 0 };
  private readonly retention: LogRetention;

  static open(opts: SqliteStoreOptions): SqliteStore {
    const retention = { maxEvents: opts.maxEvents ?? DEFAULT_MAX_EVENTS, maxEventObjectChanges: opts.maxEventObjectChanges ?? DEFAULT_MAX_EVENT_OBJECT_CHANGES };
    for (const [name, value] of Object.entries(retention)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
    return openWalDatabase(opts.path, (db) => {
      applySchema(db);
      const store = new SqliteStore(db, prepareStatements(db), retention, opts.onListenerError, opts.sealer);
      if (opts.sealer) store.resealed = resealSqliteStore(db, store.statements, opts.sealer);
      return store;
    });
  }

  private constructor(
    private readonly db: Database.Database,
    private readonly sql: Statements,
    limits: LogRetentionLimits,
    onListenerError: ((error: unknown) => void) | undefined,
    private readonly sealer: SecretSealer | undefined,
  ) {
    this.hub = new WatchHub(onListenerError);
    this.createTx = db.transaction((obj: AnyObject) => this.writeCreate(obj)).immediate;
    this.updateTx = db.transaction((obj: AnyObject) => this.writeUpdate(obj)).immediate;
    this.deleteTx = db.transaction((kind: Kind, name: string, rv: number | undefined) => this.writeDelete(kind, name, rv)).immediate;
    this.deleteUnreadableTx = db.transaction((kind: Kind, name: string) => this.writeDeleteUnreadable(kind, name)).immediate;
    this.listTx = db.transaction((kind: Kind, node: string | undefined) => this.readList(kind, node));
    this.replayTx = db.transaction((opts: WatchOptions) => this.readReplay(opts));
    this.retention = new LogRetention(db, this.sql, limits);
  }

  /** The prepared statements, for the one-off work done at open (sqliteReseal.ts). */
  get statements(): Statements {
    return this.sql;
  }

  /** Path of the database file (for diagnostics). */
  get path(): string {
    return this.db.name;
  }

  /** Number of open watches (for metrics). */
  get watchCount(): number {
    return this.hub.size;
  }

  async revision(): Promise<number> {
    this.assertOpen();
    return this.sql.readMeta.get()!.revision;
  }

  async compactedRevision(): Promise<number> {
    this.assertOpen();
    return this.sql.readMeta.get()!.compacted_revision;
  }

  async get<K extends Kind>(kind: K, name: string): Promise<ObjectOf<K> | undefined> {
    this.assertOpen();
    const row = this.sql.getObject.get(kind, name);
    return row ? (this.readRow(kind, name, row.body) as ObjectOf<K>) : undefined;
  }

  async list<K extends Kind>(kind: K, opts: ListOptions = {}): Promise<{ items: ObjectOf<K>[]; revision: number }> {
    this.assertOpen();
    const { items, revision } = this.listTx(kind, opts.node);
    return { items: items as ObjectOf<K>[], revision };
  }

  async create<T extends AnyObject>(obj: T): Promise<T> {
    this.assertWritable(obj);
    const { object, change } = this.createTx(obj);
    this.hub.publish(change);
    return object as T;
  }

  async update<T extends AnyObject>(obj: T): Promise<T> {
    this.assertWritable(obj);
    const { object, change } = this.updateTx(obj);
    this.hub.publish(change);
    return object as T;
  }

  async delete<K extends Kind>(kind: K, name: string, opts: { resourceVersion?: number } = {}): Promise<ObjectOf<K>> {
    this.assertOpen();
    const { object, change } = this.deleteTx(kind, name, opts.resourceVersion);
    this.hub.publish(change);
    return object as ObjectOf<K>;
  }

  async deleteUnreadable(kind: Kind, name: string): Promise<{ revision: number }> {
    this.assertOpen();
    const change = this.deleteUnreadableTx(kind, name);
    this.hub.publish(change);
    return { revision: change.revision };
  }

  async listUnreadable(): Promise<UnreadableObject[]> {
    this.assertOpen();
    const found: UnreadableObject[] = [];
    for (const row of this.sql.listAll.iterate()) {
      const read = this.readStored(row.kind, row.name, row.body);
      if ('reason' in read) found.push({ kind: row.kind, name: row.name, reason: read.reason });
    }
    return found;
  }

  async watch(opts: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<Watch> {
    this.assertOpen();
    if (!Number.isInteger(opts.fromRevision) || opts.fromRevision < 0) {
      throw new StoreError(`fromRevision must be a non-negative integer, got ${opts.fromRevision}`, 400);
    }
    // Reading the replay and registering happen in one synchronous stretch, so no write can
    // commit in between: the watcher sees every change exactly once.
    const replay = this.replayTx(opts);
    return this.hub.add(opts, this.refuseUnreadableReplay(opts, replay), onEvent);
  }

  /** One process owns the file: no other writer can hold a guard's key, so every guard holds. */
  guarded(_guard: WriteGuard): Store {
    return this;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.closeAll();
    this.db.close();
  }

  // ---- transaction bodies (run inside better-sqlite3 transactions) ----------------------------

  private writeCreate(obj: AnyObject): { object: AnyObject; change: LoggedChange } {
    const { kind, metadata: { name } } = obj;
    if (this.sql.getObject.get(kind, name)) {
      throw new ConflictError(`${describeObject(kind, name)} already exists`);
    }
    const revision = this.nextRevision();
    const object = stampCreated(obj, revision, randomUUID(), new Date());
    const node = boundNode(object) ?? null;
    const body = JSON.stringify(object);
    this.sql.insertObject.run(kind, name, node, revision, this.sealed(kind, name, body));
    return { object, change: this.appendEvent(revision, 'ADDED', kind, name, node, body) };
  }

  private writeUpdate(obj: AnyObject): { object: AnyObject; change: LoggedChange } {
    const { kind, metadata: { name, resourceVersion } } = obj;
    const row = this.sql.getObject.get(kind, name);
    if (!row) throw new NotFoundError(notFoundMessage(kind, name));
    if (resourceVersion !== undefined && resourceVersion !== row.resource_version) {
      throw new ConflictError(staleVersionMessage(kind, name, resourceVersion, row.resource_version));
    }
    const revision = this.nextRevision();
    const stored = this.readRow(kind, name, row.body);
    const object = stampUpdated(obj, stored, revision);
    const node = boundNode(object) ?? null;
    const body = JSON.stringify(object);
    this.sql.replaceObject.run(node, revision, this.sealed(kind, name, body), kind, name);
    // A write that moves the object to another node is, for the node it leaves, its delete.
    const rebound = row.node === node ? null : { fromNode: row.node, body: JSON.stringify(restamped(stored, revision)) };
    return { object, change: this.appendEvent(revision, 'MODIFIED', kind, name, node, body, rebound) };
  }

  private writeDelete(kind: Kind, name: string, expectedRv: number | undefined): { object: AnyObject; change: LoggedChange } {
    const row = this.sql.getObject.get(kind, name);
    if (!row) throw new NotFoundError(notFoundMessage(kind, name));
    if (expectedRv !== undefined && expectedRv !== row.resource_version) {
      throw new ConflictError(staleVersionMessage(kind, name, expectedRv, row.resource_version));
    }
    const object = this.readRow(kind, name, row.body);
    const revision = this.nextRevision();
    object.metadata.resourceVersion = revision;
    const node = boundNode(object) ?? null;
    this.sql.deleteObject.run(kind, name);
    return { object, change: this.appendEvent(revision, 'DELETED', kind, name, node, JSON.stringify(object)) };
  }

  private writeDeleteUnreadable(kind: Kind, name: string): LoggedChange {
    const row = this.sql.getObject.get(kind, name);
    if (!row) throw new NotFoundError(notFoundMessage(kind, name));
    if ('object' in this.readStored(kind, name, row.body)) {
      throw new ConflictError(`${describeObject(kind, name)} is readable; delete it the normal way`);
    }
    const revision = this.nextRevision();
    this.sql.deleteObject.run(kind, name);
    // The node column was written with the row, so the object's node still hears of the delete.
    return this.appendEvent(revision, 'DELETED', kind, name, row.node, JSON.stringify(tombstoneOf(kind, name, revision)));
  }

  private nextRevision(): number {
    const revision = this.sql.readMeta.get()!.revision + 1;
    this.sql.setRevision.run(revision);
    return revision;
  }

  private appendEvent(
    revision: number, type: LoggedChange['type'], kind: Kind, name: string, node: string | null, body: string, rebound: Rebound | null = null,
  ): LoggedChange {
    const prevBody = rebound === null ? null : this.sealed(kind, name, rebound.body);
    this.sql.appendEvent.run(revision, kind, name, node, type, this.sealed(kind, name, body), rebound?.fromNode ?? null, prevBody);
    this.retention.appended(kind);
    return { revision, type, kind, node, body, rebound };
  }

  private readList(kind: Kind, node: string | undefined): { items: AnyObject[]; revision: number } {
    const rows = node === undefined ? this.sql.listByKind.all(kind) : this.sql.listByKindNode.all(kind, node);
    const items: AnyObject[] = [];
    const unreadable: UnreadableObject[] = [];
    for (const row of rows) {
      const read = this.readStored(kind, row.name, row.body);
      if ('object' in read) items.push(read.object);
      else unreadable.push({ kind, name: row.name, reason: read.reason });
    }
    if (unreadable.length > 0) throw new UnreadableError(unreadable);
    return { items, revision: this.sql.readMeta.get()!.revision };
  }

  /**
   * A log entry that cannot be read (a torn write, a hand edit) is a change no watcher can be
   * given. Skipping it would leave a watcher (an edge) wrong about that object for good, so the
   * log is compacted through it instead, the same as an old revision: this watcher, and every
   * later one from before it, gets GoneError and lists afresh (an edge: a snapshot). Returns the
   * replay without unreadable Event entries that a watch may go on without (see below).
   */
  private refuseUnreadableReplay({ kind, fromRevision }: WatchOptions, replay: readonly ReplayedChange[]): ReplayedChange[] {
    const readable: ReplayedChange[] = [];
    for (const change of replay) {
      const read = this.readStored(change.kind, change.name, change.body);
      const prev = change.rebound ? this.readStored(change.kind, change.name, change.rebound.body) : read;
      if ('object' in read && 'object' in prev) {
        readable.push(change);
        continue;
      }
      const reason = 'reason' in read ? read.reason : 'reason' in prev ? `its state before the move: ${prev.reason}` : '';
      // An Event entry is history in its own window: only that window is compacted through it,
      // and a watch not of Events alone goes on without it (as it would once the window passed it).
      if (change.kind === EVENT_KIND) {
        this.retention.compactEventsThrough(change.revision);
        if (kind !== EVENT_KIND) continue;
      } else {
        this.retention.compactThrough(change.revision);
      }
      throw new GoneError(`revision ${fromRevision} cannot be replayed: the watch log entry at revision ${change.revision} `
        + `(${describeObject(change.kind, change.name)}) cannot be read (${reason}); the log now starts after it; list again`);
    }
    return readable;
  }

  private readReplay({ kind, node, fromRevision }: WatchOptions): ReplayedChange[] {
    // A watch of Events alone needs every Event entry; any other needs every desired-state entry.
    const compacted = kind === EVENT_KIND ? this.sql.readEventCompacted.get()!.revision : this.sql.readMeta.get()!.compacted_revision;
    if (fromRevision < compacted) {
      throw new GoneError(`revision ${fromRevision} has been compacted; the oldest revision a watch${kind === EVENT_KIND ? ' of events' : ''} can resume from is ${compacted}; list again`);
    }
    let rows: EventRow[];
    if (kind !== undefined && node !== undefined) rows = this.sql.eventsOfKindNodeAfter.all(node, kind, fromRevision, node, kind, fromRevision);
    else if (node !== undefined) rows = this.sql.eventsOfNodeAfter.all(node, fromRevision, node, fromRevision);
    else if (kind !== undefined) rows = this.sql.eventsOfKindAfter.all(kind, fromRevision);
    else rows = this.sql.eventsAfter.all(fromRevision);
    return rows.map((row) => this.openedChange(row));
  }

  /** A logged change with its bodies opened; one that does not open keeps its stored form, which does not read as an object. */
  private openedChange(row: EventRow): ReplayedChange {
    const open = (stored: string) => {
      const opened = this.openBody(row.kind, row.name, stored);
      return 'body' in opened ? opened.body : stored;
    };
    return loggedChangeOf({ ...row, body: open(row.body), prev_body: row.prev_body === null ? null : open(row.prev_body) });
  }

  private sealed(kind: Kind, name: string, body: string): string {
    return this.sealer ? this.sealer.seal(kind, name, body) : body;
  }

  private openBody(kind: Kind, name: string, stored: string): OpenedBody {
    return this.sealer ? this.sealer.open(kind, name, stored) : openStoredBody(kind, name, stored, NO_KEYS);
  }

  private readStored(kind: Kind, name: string, stored: string): { object: AnyObject } | { reason: string } {
    const opened = this.openBody(kind, name, stored);
    return 'body' in opened ? readStoredObject(kind, name, opened.body) : opened;
  }

  private readRow(kind: Kind, name: string, stored: string): AnyObject {
    const read = this.readStored(kind, name, stored);
    if ('reason' in read) throw new UnreadableError([{ kind, name, reason: read.reason }]);
    return read.object;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('store is closed', 503);
  }

  private assertWritable(obj: AnyObject): void {
    this.assertOpen();
    if (!KINDS.includes(obj.kind)) throw new StoreError(`unknown kind ${JSON.stringify(obj.kind)}`, 400);
    if (typeof obj.metadata?.name !== 'string' || obj.metadata.name === '') {
      throw new StoreError(`${obj.kind} without metadata.name`, 400);
    }
  }
}

/** A change read back from the log, with the object's name (for naming an unreadable entry). */
type ReplayedChange = LoggedChange & { name: string };

function loggedChangeOf(row: EventRow): ReplayedChange {
  const { revision, type, kind, name, node, body } = row;
  const rebound = row.prev_body === null ? null : { fromNode: row.prev_node, body: row.prev_body };
  return { revision, type, kind, name, node, body, rebound };
}

/** The object's last state on the node it leaves, as a delete there: stamped with the move's revision. */
function restamped(stored: AnyObject, revision: number): AnyObject {
  return { ...stored, metadata: { ...stored.metadata, resourceVersion: revision } } as AnyObject;
}

const NO_KEYS: ReadonlyMap<string, Buffer> = new Map();
