import type Database from 'better-sqlite3';
import type { Kind } from '../../protocol/index.js';
import type { WatchEventType } from './store.js';

/**
 * Schema and prepared statements of the SQLite store. Statements are prepared once per
 * connection; the write path is a handful of primary-key lookups and inserts.
 */

export const SCHEMA_VERSION = 1;

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
  body     TEXT NOT NULL
);
-- Replays of kind- and node-filtered watches read these instead of scanning the whole log.
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, revision);
CREATE INDEX IF NOT EXISTS events_by_node ON events (node, revision);
`;

export interface MetaRow { revision: number; compacted_revision: number }
export interface ObjectRow { node: string | null; resource_version: number; body: string }
export interface EventRow { revision: number; type: WatchEventType; kind: Kind; name: string; node: string | null; body: string }

export function applySchema(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true });
  if (typeof version === 'number' && version > SCHEMA_VERSION) {
    throw new Error(`store database has schema version ${version}; this build understands up to ${SCHEMA_VERSION}`);
  }
  db.exec(DDL);
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

const EVENT_COLUMNS = 'revision, type, kind, name, node, body';

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

    appendEvent: db.prepare<[number, Kind, string, string | null, WatchEventType, string]>(
      'INSERT INTO events (revision, kind, name, node, type, body) VALUES (?, ?, ?, ?, ?, ?)'),
    deleteEventsUpTo: db.prepare<[number]>('DELETE FROM events WHERE revision <= ?'),

    eventsAfter: db.prepare<[number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE revision > ? ORDER BY revision`),
    eventsOfKindAfter: db.prepare<[Kind, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE kind = ? AND revision > ? ORDER BY revision`),
    eventsOfNodeAfter: db.prepare<[string, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE node = ? AND revision > ? ORDER BY revision`),
    eventsOfKindNodeAfter: db.prepare<[string, Kind, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE node = ? AND kind = ? AND revision > ? ORDER BY revision`),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
