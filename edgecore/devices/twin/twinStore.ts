import type Database from 'better-sqlite3';
import { z } from 'zod';
import { PropertyValueSchema, TimestampsSchema } from '../../../protocol/index.js';
import type { Db } from '../persistence/schema.js';
import type { DeviceTwinState } from './twinEngine.js';

/**
 * The reported sections of the node's device twins, in the database the hub was given (edgecore:
 * its meta database, next to the outbox and the broker's `mqtt_` tables). Desired is not stored
 * here: it comes from the edge's copy of the Device objects (cloud wins) through
 * DeviceHub.setDevices().
 */

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE IF NOT EXISTS device_twins (
    device TEXT PRIMARY KEY,
    reported TEXT NOT NULL,
    version INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    last_seen TEXT,
    -- Whether the edge last published the device online; rows left at 1 by a crash are
    -- corrected (and announced offline) at the next start.
    online INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  `,
];

interface TwinRow {
  device: string;
  reported: string;
  version: number;
  metadata: string;
  last_seen: string | null;
  online: number;
}

const StoredReportedSchema = z.record(z.string(), PropertyValueSchema);

/**
 * Creates or upgrades the twin table. Its schema version lives in its own table, not in
 * `PRAGMA user_version`, which belongs to whoever owns the file (the meta store, in edgecore).
 */
export function migrateTwinSchema(db: Db): void {
  db.exec('CREATE TABLE IF NOT EXISTS device_twins_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT');
  const read = db.prepare<[], { value: string }>("SELECT value FROM device_twins_meta WHERE key = 'schema_version'");
  const write = db.prepare<[string]>(
    "INSERT INTO device_twins_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  db.transaction(() => {
    const current = Number(read.get()?.value ?? '0');
    if (!Number.isInteger(current) || current > MIGRATIONS.length) {
      throw new Error(`device twin schema version ${String(read.get()?.value)} is newer than this build knows (${MIGRATIONS.length})`);
    }
    for (let version = current; version < MIGRATIONS.length; version++) db.exec(MIGRATIONS[version]!);
    write.run(String(MIGRATIONS.length));
  }).immediate();
}

/** Twin rows one statement saves at once (see saveMany). */
const ROWS_PER_STATEMENT = 32;
const COLUMNS = '(device, reported, version, metadata, last_seen, online)';
type RowValues = [string, string, number, string, string | null, number];

export class TwinStore {
  private readonly selectAll: Database.Statement<[], TwinRow>;
  private readonly upsert: Database.Statement<RowValues>;
  private readonly upsertMany: Database.Statement<(string | number | null)[]>;
  private readonly remove: Database.Statement<[string]>;

  constructor(db: Db) {
    migrateTwinSchema(db);
    this.selectAll = db.prepare('SELECT device, reported, version, metadata, last_seen, online FROM device_twins ORDER BY device');
    // REPLACE, not an upsert: every column is written, and it costs ~20 % less per row (one
    // save per accepted report).
    this.upsert = db.prepare(`REPLACE INTO device_twins ${COLUMNS} VALUES (?, ?, ?, ?, ?, ?)`);
    this.upsertMany = db.prepare<(string | number | null)[]>(`REPLACE INTO device_twins ${COLUMNS} VALUES ${Array(ROWS_PER_STATEMENT).fill('(?, ?, ?, ?, ?, ?)').join(', ')}`);
    this.remove = db.prepare('DELETE FROM device_twins WHERE device = ?');
  }

  /** Every stored twin; rows that do not parse are listed in `corrupt` (and left out). */
  loadAll(): { twins: Map<string, DeviceTwinState>; corrupt: string[] } {
    const twins = new Map<string, DeviceTwinState>();
    const corrupt: string[] = [];
    for (const row of this.selectAll.all()) {
      const reported = StoredReportedSchema.safeParse(parseJson(row.reported));
      const metadata = TimestampsSchema.safeParse(parseJson(row.metadata));
      if (!reported.success || !metadata.success) {
        corrupt.push(row.device);
        continue;
      }
      twins.set(row.device, {
        reported: reported.data, version: row.version, metadata: metadata.data, lastSeen: row.last_seen, online: row.online === 1,
      });
    }
    return { twins, corrupt };
  }

  save(device: string, twin: DeviceTwinState): void {
    this.upsert.run(...rowValues(device, twin));
  }

  /**
   * Saves many twins, ROWS_PER_STATEMENT to a statement: a group commit saves one row per
   * device that reported, and one call per row was a fifth of what a row cost.
   */
  saveMany(twins: readonly (readonly [string, DeviceTwinState])[]): void {
    let at = 0;
    for (; at + ROWS_PER_STATEMENT <= twins.length; at += ROWS_PER_STATEMENT) {
      const values: (string | number | null)[] = [];
      for (let i = at; i < at + ROWS_PER_STATEMENT; i++) values.push(...rowValues(twins[i]![0], twins[i]![1]));
      this.upsertMany.run(...values);
    }
    for (; at < twins.length; at++) this.save(twins[at]![0], twins[at]![1]);
  }

  delete(device: string): void {
    this.remove.run(device);
  }
}

function rowValues(device: string, twin: DeviceTwinState): RowValues {
  return [device, JSON.stringify(twin.reported), twin.version, JSON.stringify(twin.metadata), twin.lastSeen, twin.online ? 1 : 0];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
