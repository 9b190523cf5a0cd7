import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { openEdgeSqlite } from '../sqliteFile.js';

/**
 * Opening and migrating the edge's meta database. One file holds everything the edge needs to
 * run without the cloud; `user_version` records which schema it has.
 */

export type Db = Database.Database;

export const SCHEMA_VERSION = 4;

/** Internal bookkeeping rows in the `state` table (kept apart from the user-facing kv table). */
export const STATE_KEYS = {
  epoch: 'epoch',
  lastRevision: 'lastRevision',
  /** Last outbox seq handed out; seqs are never reused within an epoch, even after acks. */
  lastSeq: 'lastSeq',
  /** Events dropped by the outbox bounds, reported upstream so operators know data was lost. */
  dropped: 'dropped',
  /**
   * Events and telemetry batches in the outbox (the bounded spool), kept with every change so
   * the bound is checked without counting rows: a count per enqueue cost milliseconds once the
   * spool was full during an outage. Recounted at every open.
   */
  spooled: 'spooled',
} as const;

const MIGRATIONS: readonly string[] = [
  // v1
  `
  CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
  CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
  -- Desired workloads, keyed by the local name (spec.app); metadata.name is what deltas delete by.
  CREATE TABLE desired (app TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, json TEXT NOT NULL) STRICT;
  CREATE TABLE records (name TEXT PRIMARY KEY, json TEXT NOT NULL) STRICT;
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX outbox_kind_key ON outbox (kind, key);
  `,
  // v2: devices bound to this node (twin desired sections, protocol configs) as the cloud sent them.
  `
  CREATE TABLE desired_devices (name TEXT PRIMARY KEY, json TEXT NOT NULL) STRICT;
  `,
  // v3: only the coalescing kinds are looked up by key. Indexing every row made each spooled
  // telemetry batch or event dirty an index page on insert and another on its drop: with the
  // spool full during an outage that was most of the pages a device hub commit wrote.
  // The WHERE must read as outbox.ts' COALESCING_SQL, or SQLite will not use the index.
  `
  DROP INDEX outbox_kind_key;
  CREATE INDEX outbox_coalescing_key ON outbox (kind, key) WHERE kind IN ('workloadStatus', 'twinReported');
  `,
  // v4: routes bound to this node (NodeRoute objects, keyed by metadata.name) as the cloud sent them.
  `
  CREATE TABLE desired_routes (name TEXT PRIMARY KEY, json TEXT NOT NULL) STRICT;
  `,
];

/**
 * Opens (creating if needed) the database file with the durability settings the sync contract
 * needs: the edge acks a revision only after its commit, so commits must survive power loss.
 */
export function openDatabase(path: string): Db {
  // FULL: with WAL this fsyncs the log on every commit, so an acked revision or an enqueued
  // outbox entry survives a power cut, not just a process crash. Write volume on an edge is low.
  return openEdgeSqlite(path, { synchronous: 'FULL' }, (db) => {
    migrate(db);
    return db;
  });
}

function migrate(db: Db): void {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > SCHEMA_VERSION) {
    throw new Error(`meta database has schema version ${current}; this edgecore knows only up to ${SCHEMA_VERSION}`);
  }
  db.transaction(() => {
    for (let version = current; version < SCHEMA_VERSION; version++) {
      db.exec(MIGRATIONS[version]!);
    }
    // The epoch is born with the database: a wiped or replaced file gets a new one, which tells
    // the cloud to send a full snapshot instead of a delta the edge has no base for.
    db.prepare('INSERT OR IGNORE INTO state (key, value) VALUES (?, ?)').run(STATE_KEYS.epoch, randomUUID());
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Read/write helpers for the `state` table, shared by the parts of the store. */
export class StateTable {
  private readonly getStmt: Database.Statement<[string], { value: string }>;
  private readonly setStmt: Database.Statement<[string, string]>;

  constructor(db: Db) {
    this.getStmt = db.prepare('SELECT value FROM state WHERE key = ?');
    this.setStmt = db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  }

  get(key: string): string | undefined {
    return this.getStmt.get(key)?.value;
  }

  set(key: string, value: string): void {
    this.setStmt.run(key, value);
  }

  getNumber(key: string): number {
    const raw = this.get(key);
    if (raw === undefined) return 0;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`meta state ${key} is corrupt: ${raw}`);
    return value;
  }

  setNumber(key: string, value: number): void {
    this.set(key, String(value));
  }
}
