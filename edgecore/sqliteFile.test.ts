import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEdgeSqlite } from './sqliteFile.js';

describe('openEdgeSqlite', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'edgefleet-sqlite-')); });
  afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

  it('creates the file owner-only, in WAL mode, with the asked durability, foreign keys enforced', () => {
    const path = join(dir, 'edge.db');
    const db = openEdgeSqlite(path, { synchronous: 'FULL' }, (d) => d);
    try {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    } finally {
      db.close();
    }
    const normal = openEdgeSqlite(path, { synchronous: 'NORMAL' }, (d) => d);
    expect(normal.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    normal.close();
  });

  it('closes the handle again when setup throws', () => {
    let opened: Database.Database | undefined;
    expect(() => openEdgeSqlite(join(dir, 'bad.db'), { synchronous: 'FULL' }, (db) => { opened = db; throw new Error('migration failed'); })).toThrow('migration failed');
    expect(opened?.open).toBe(false);
  });
});
