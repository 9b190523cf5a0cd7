import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/**
 * Opens a cloudcore SQLite file in WAL mode with `synchronous = NORMAL` (a power cut may lose
 * the last commits but never corrupts the file) and runs `setup` on it; the handle is closed
 * again if setup throws, so a failed open leaks nothing.
 */
export function openWalDatabase<T>(path: string, setup: (db: Database.Database) => T): T {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Owner-only before SQLite creates it with the umask; SQLite gives -wal and -shm the main file's mode.
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  }
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    return setup(db);
  } catch (error) {
    db.close();
    throw error;
  }
}
