import type Database from 'better-sqlite3';
import type { Kind } from '../../protocol/index.js';
import type { WatchEventType } from './store.js';

/**
 * Schema and prepared statements of the SQLite store. Statements are prepared once per
 * connection; the write path is a handful of primary-key lookups and inserts.
 */

export const SCHEMA_VERSION = 3;

const DDL = `
CREATE TABLE IF NOT EXISTS meta (
  id                 INTEGER PRIMARY KEY CHECK (id = 1),
  revision           INTEGER NOT NULL,
  compacted_revision INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, revision, compacted_revision) VALUES (1, 0, 0);

CREATE TABLE IF NOT EXISTS objects (
  kind             TEXT    NOT NULL,
  name             TEXT    NOT NULL,
  node             TEXT,
  resource_version INTEGER NOT NULL,
  body             TEXT    NOT NULL,
  PRIMARY KEY (kind, name)
);
-- (kind, node) for per-node lists; name last so those lists come out sorted without a sort step.
CREATE INDEX IF NOT EXISTS objects_by_kind_node ON objects (kind, node, name);

CREATE TABLE IF NOT EXISTS events (
  revision INTEGER PRIMARY KEY,
  kind     TEXT NOT NULL,
  name     TEXT NOT NULL,
  node     TEXT,
  type     TEXT NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
  body     TEXT NOT NULL,
  -- Set only by an update that changed the object's node: its node before (NULL: none) and its
  -- last state there (prev_body NOT NULL marks such a row). The old node's watchers see a delete.
  prev_node TEXT,
  prev_body TEXT
);
-- Replays of kind- and node-filtered watches read these instead of scanning the whole log.
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, revision);
CREATE INDEX IF NOT EXISTS events_by_node ON events (node, revision);
`;

// Version 3: the log's entries about Event objects have their own retention window (a flood of
// edge events must never compact desired state away), so their compaction point is kept apart.
// A version 2 file starts with both windows at its one compaction point.
const EVENT_COMPACTION = `
CREATE TABLE IF NOT EXISTS event_compaction (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  revision INTEGER NOT NULL
);
INSERT OR IGNORE INTO event_compaction (id, revision) SELECT 1, compacted_revision FROM meta WHERE id = 1;
`;

/** The log's entries of this kind are retained apart from the rest (see SqliteStore.compact). */
export const EVENT_KIND = 'Event';

// Created after the migration below, which adds the column to version 1 files.
const PREV_NODE_INDEX = `CREATE INDEX IF NOT EXISTS events_by_prev_node ON events (prev_node, revision) WHERE prev_node IS NOT NULL;`;

export interface MetaRow { revision: number; compacted_revision: number }
export interface ObjectRow { node: string | null; resource_version: number; body: string }
export interface EventRow {
  revision: number; type: WatchEventType; kind: Kind; name: string; node: string | null; body: string;
  prev_node: string | null; prev_body: string | null;
}

export function applySchema(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true });
  if (typeof version === 'number' && version > SCHEMA_VERSION) {
    throw new Error(`store database has schema version ${version}; this build understands up to ${SCHEMA_VERSION}`);
  }
  db.transaction(() => {
    db.exec(DDL);
    const columns = db.prepare<[], { name: string }>('PRAGMA table_info(events)').all().map((c) => c.name);
    if (!columns.includes('prev_body')) migrateToNodeMoves(db);
    db.exec(PREV_NODE_INDEX);
    db.exec(EVENT_COMPACTION);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * Version 1 logged no previous node binding, so its log cannot tell a node that an object moved
 * away, and an edge may already hold objects moved off it. The migration drops that log and
 * moves the revision one past everything an edge can have acked: every edge resumes from before
 * the compacted revision, so each gets one snapshot, which also removes what it wrongly kept.
 * Objects are untouched.
 */
function migrateToNodeMoves(db: Database.Database): void {
  db.exec('ALTER TABLE events ADD COLUMN prev_node TEXT; ALTER TABLE events ADD COLUMN prev_body TEXT;');
  db.exec('DELETE FROM events; UPDATE meta SET revision = revision + 1, compacted_revision = revision + 1 WHERE id = 1;');
}

const EVENT_COLUMNS = 'revision, type, kind, name, node, body, prev_node, prev_body';

export function prepareStatements(db: Database.Database) {
  return {
    readMeta: db.prepare<[], MetaRow>('SELECT revision, compacted_revision FROM meta WHERE id = 1'),
    setRevision: db.prepare<[number]>('UPDATE meta SET revision = ? WHERE id = 1'),
    setCompacted: db.prepare<[number]>('UPDATE meta SET compacted_revision = ? WHERE id = 1'),

    getObject: db.prepare<[Kind, string], ObjectRow>(
      'SELECT node, resource_version, body FROM objects WHERE kind = ? AND name = ?'),
    listByKind: db.prepare<[Kind], { name: string; body: string }>(
      'SELECT name, body FROM objects WHERE kind = ? ORDER BY name'),
    listAll: db.prepare<[], { kind: Kind; name: string; body: string }>(
      'SELECT kind, name, body FROM objects ORDER BY kind, name'),
    listByKindNode: db.prepare<[Kind, string], { name: string; body: string }>(
      'SELECT name, body FROM objects WHERE kind = ? AND node = ? ORDER BY name'),
    insertObject: db.prepare<[Kind, string, string | null, number, string]>(
      'INSERT INTO objects (kind, name, node, resource_version, body) VALUES (?, ?, ?, ?, ?)'),
    replaceObject: db.prepare<[string | null, number, string, Kind, string]>(
      'UPDATE objects SET node = ?, resource_version = ?, body = ? WHERE kind = ? AND name = ?'),
    deleteObject: db.prepare<[Kind, string]>('DELETE FROM objects WHERE kind = ? AND name = ?'),
    // Resealing rewrites how a body is stored, not what it says: no revision, no event.
    resealObject: db.prepare<[string, Kind, string]>('UPDATE objects SET body = ? WHERE kind = ? AND name = ?'),
    resealEvent: db.prepare<[string, string | null, number]>('UPDATE events SET body = ?, prev_body = ? WHERE revision = ?'),

    appendEvent: db.prepare<[number, Kind, string, string | null, WatchEventType, string, string | null, string | null]>(
      'INSERT INTO events (revision, kind, name, node, type, body, prev_node, prev_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    deleteEventsUpTo: db.prepare<[number]>('DELETE FROM events WHERE revision <= ?'),
    // The two retention windows of the log: desired state (every kind but Event) and Event objects.
    countStateRows: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM events WHERE kind != '${EVENT_KIND}'`),
    countEventRows: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM events WHERE kind = '${EVENT_KIND}'`),
    /** The n-th (0-based) oldest desired-state row after the compaction point. */
    nthOldestStateRow: db.prepare<[number, number], { revision: number }>(
      `SELECT revision FROM events WHERE revision > ? AND kind != '${EVENT_KIND}' ORDER BY revision LIMIT 1 OFFSET ?`),
    nthOldestEventRow: db.prepare<[number, number], { revision: number }>(
      `SELECT revision FROM events WHERE kind = '${EVENT_KIND}' AND revision > ? ORDER BY revision LIMIT 1 OFFSET ?`),
    deleteStateRowsUpTo: db.prepare<[number]>(`DELETE FROM events WHERE revision <= ? AND kind != '${EVENT_KIND}'`),
    deleteEventRowsUpTo: db.prepare<[number]>(`DELETE FROM events WHERE kind = '${EVENT_KIND}' AND revision <= ?`),
    readEventCompacted: db.prepare<[], { revision: number }>('SELECT revision FROM event_compaction WHERE id = 1'),
    setEventCompacted: db.prepare<[number]>('UPDATE event_compaction SET revision = ? WHERE id = 1'),

    eventsAfter: db.prepare<[number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE revision > ? ORDER BY revision`),
    eventsOfKindAfter: db.prepare<[Kind, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE kind = ? AND revision > ? ORDER BY revision`),
    // A node's changes include those that moved an object away from it (prev_node); the two
    // halves never overlap, as a move's prev_node differs from its node.
    eventsOfNodeAfter: db.prepare<[string, number, string, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE node = ? AND revision > ?
       UNION ALL SELECT ${EVENT_COLUMNS} FROM events WHERE prev_node = ? AND revision > ? ORDER BY revision`),
    eventsOfKindNodeAfter: db.prepare<[string, Kind, number, string, Kind, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE node = ? AND kind = ? AND revision > ?
       UNION ALL SELECT ${EVENT_COLUMNS} FROM events WHERE prev_node = ? AND kind = ? AND revision > ? ORDER BY revision`),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
