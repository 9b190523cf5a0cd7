import { closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * The edge's one way to open a SQLite file (the meta database, the MQTT broker's store): WAL
 * mode, foreign keys enforced, a 5 s busy timeout, and a file created owner-only. cloudcore
 * has its own opener (cloudcore/store/sqliteFile.ts): the two sides share only protocol/.
 */

export interface EdgeSqliteOptions {
  /**
   * `FULL` fsyncs the WAL on every commit, so a commit survives a power cut; `NORMAL` survives
   * a crash of the process, but the last commits may be lost on power loss.
   */
  synchronous: 'FULL' | 'NORMAL';
}

/**
 * Opens (creating if needed) the file and runs `setup` on it (migrations); the handle is
 * closed again if setup throws, so a failed open leaks nothing.
 */
export function openEdgeSqlite<T>(path: string, opts: EdgeSqliteOptions, setup: (db: Database.Database) => T): T {
  if (path !== ':memory:' && !existsSync(path)) {
    // Edge files hold credentials and payloads: create the file owner-only before SQLite does
    // with the umask. SQLite gives its -wal and -shm files the same mode as the main file.
    closeSync(openSync(path, 'a', 0o600));
  }
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous}`);
    // better-sqlite3 enforces foreign keys by default already; said here so it does not depend on that.
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    return setup(db);
  } catch (err) {
    db.close();
    throw err;
  }
}
