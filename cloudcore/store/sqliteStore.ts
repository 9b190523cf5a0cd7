import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { KINDS, type AnyObject, type Kind } from '../../protocol/index.js';
import { openWalDatabase } from './sqliteFile.js';
import { openStoredBody, SEALED_KINDS, type OpenedBody, type SecretSealer } from './secretSealing.js';
import { applySchema, prepareStatements, type EventRow, type Statements } from './sqliteSchema.js';
import {
  boundNode, ConflictError, GoneError, NotFoundError, StoreError, UnreadableError,
  type ListOptions, type ObjectOf, type Store, type Watch, type WatchEvent, type WatchOptions,
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

export interface SqliteStoreOptions {
  /** Database file; its directory is created if missing. `:memory:` works for throwaway stores. */
  path: string;
  /** Events kept for watch replay; older ones are compacted away (watching from before them throws GoneError). */
  maxEvents?: number;
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
  private readonly compactThroughTx: (revision: number) => void;
  /** Bodies sealed again when the store opened (stored plain, or under a key no longer first). */
  resealed = { objects: 0, events: 0 };

  static open(opts: SqliteStoreOptions): SqliteStore {
    const maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
    if (!Number.isInteger(maxEvents) || maxEvents < 1) {
      throw new RangeError(`maxEvents must be a positive integer, got ${maxEvents}`);
    }
    return openWalDatabase(opts.path, (db) => {
      applySchema(db);
      const store = new SqliteStore(db, prepareStatements(db), maxEvents, opts.onListenerError, opts.sealer);
      store.resealed = store.resealAll();
      return store;
    });
  }

  private constructor(
    private readonly db: Database.Database,
    private readonly sql: Statements,
    private readonly maxEvents: number,
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
    this.compactThroughTx = db.transaction((revision: number) => {
      if (revision <= this.sql.readMeta.get()!.compacted_revision) return;
      this.sql.deleteEventsUpTo.run(revision);
      this.sql.setCompacted.run(revision);
    }).immediate;
    // A smaller maxEvents than last time takes effect now rather than at the next write.
    db.transaction(() => this.compact(this.sql.readMeta.get()!.revision)).immediate();
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
    this.refuseUnreadableReplay(opts.fromRevision, replay);
    return this.hub.add(opts, replay, onEvent);
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
    this.compact(revision);
    return { revision, type, kind, node, body, rebound };
  }

  /**
   * Keeps the newest `maxEvents` events. Every write appends exactly one event, so the log is the
   * contiguous range (compacted, revision]; trimming it is a primary-key range delete.
   */
  private compact(revision: number): void {
    const compactTo = revision - this.maxEvents;
    if (compactTo <= this.sql.readMeta.get()!.compacted_revision) return;
    this.sql.deleteEventsUpTo.run(compactTo);
    this.sql.setCompacted.run(compactTo);
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
   * later one from before it, gets GoneError and lists afresh (an edge: a snapshot).
   */
  private refuseUnreadableReplay(fromRevision: number, replay: readonly ReplayedChange[]): void {
    for (const change of replay) {
      const read = this.readStored(change.kind, change.name, change.body);
      const prev = change.rebound ? this.readStored(change.kind, change.name, change.rebound.body) : read;
      if ('object' in read && 'object' in prev) continue;
      const reason = 'reason' in read ? read.reason : 'reason' in prev ? `its state before the move: ${prev.reason}` : '';
      this.compactThroughTx(change.revision);
      throw new GoneError(`revision ${fromRevision} cannot be replayed: the watch log entry at revision ${change.revision} `
        + `(${describeObject(change.kind, change.name)}) cannot be read (${reason}); the log now starts after it; list again`);
    }
  }

  private readReplay({ kind, node, fromRevision }: WatchOptions): ReplayedChange[] {
    const compacted = this.sql.readMeta.get()!.compacted_revision;
    if (fromRevision < compacted) {
      throw new GoneError(`revision ${fromRevision} has been compacted; the oldest revision a watch can resume from is ${compacted}; list again`);
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

  // ---- sealing --------------------------------------------------------------------------------

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

  /**
   * Seals again, under the first key, every sealed-kind body stored plain or under an older key,
   * in the objects and in the log. When a plain body was among them the file is vacuumed, so
   * the plain text does not linger in free pages or the WAL.
   */
  private resealAll(): { objects: number; events: number } {
    const sealer = this.sealer;
    if (!sealer) return { objects: 0, events: 0 };
    let plainSeen = false;
    const reseal = (kind: Kind, name: string, stored: string): string | undefined => {
      if (!sealer.needsReseal(kind, stored)) return undefined;
      const opened = sealer.open(kind, name, stored);
      if (!('body' in opened)) return undefined;
      if (opened.body === stored) plainSeen = true;
      return sealer.seal(kind, name, opened.body);
    };
    const counts = this.db.transaction(() => {
      let objects = 0;
      let events = 0;
      for (const kind of SEALED_KINDS) {
        for (const row of this.sql.listByKind.all(kind)) {
          const body = reseal(kind, row.name, row.body);
          if (body !== undefined) { this.sql.resealObject.run(body, kind, row.name); objects++; }
        }
        for (const row of this.sql.eventsOfKindAfter.all(kind, -1)) {
          const body = reseal(kind, row.name, row.body);
          const prev = row.prev_body === null ? undefined : reseal(kind, row.name, row.prev_body);
          if (body === undefined && prev === undefined) continue;
          this.sql.resealEvent.run(body ?? row.body, prev ?? row.prev_body, row.revision);
          events++;
        }
      }
      return { objects, events };
    }).immediate();
    if (plainSeen) {
      this.db.exec('VACUUM');
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
    return counts;
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
