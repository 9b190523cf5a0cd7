import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openMqttDatabase } from '../persistence/schema.js';
import { SqlitePersistence } from '../persistence/index.js';
import { TwinStore } from './twinStore.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'twin-store-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

const twin = { reported: { temperature: 20.5, mode: 'eco' }, version: 3, metadata: { temperature: { updatedAt: '2024-05-01T10:00:00Z' } }, lastSeen: '2024-05-01T10:00:01Z', online: true };

describe('TwinStore', () => {
  it('saves, reloads after reopening and deletes twins, next to the broker tables', async () => {
    const path = join(dir, 'hub.sqlite');
    let db = openMqttDatabase(path);
    const persistence = new SqlitePersistence({ db });
    new TwinStore(db).save('pump-1', twin);
    await persistence.destroy();
    db.close();

    db = openMqttDatabase(path);
    const store = new TwinStore(db);
    expect(store.loadAll()).toEqual({ twins: new Map([['pump-1', twin]]), corrupt: [] });
    store.save('pump-1', { ...twin, online: false, version: 4 });
    store.save('fan-1', { reported: {}, version: 0, metadata: {}, lastSeen: null, online: false });
    expect([...store.loadAll().twins.keys()]).toEqual(['fan-1', 'pump-1']);
    store.delete('pump-1');
    expect([...store.loadAll().twins.keys()]).toEqual(['fan-1']);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('saves many twins at once, in full statements and a remainder, replacing older rows', () => {
    const db = openMqttDatabase(join(dir, 'hub.sqlite'));
    try {
      const store = new TwinStore(db);
      store.save('dev-005', twin);
      // 70 rows: two statements of 32, then 6 one by one.
      const rows = Array.from({ length: 70 }, (_, i) => [`dev-${String(i).padStart(3, '0')}`, { ...twin, version: i, online: i % 2 === 0 }] as const);
      store.saveMany(rows);
      store.saveMany([]);
      const loaded = store.loadAll().twins;
      expect(loaded.size).toBe(70);
      for (const [name, saved] of rows) expect(loaded.get(name)).toEqual(saved);
    } finally {
      db.close();
    }
  });

  it('lists rows that do not parse instead of failing', () => {
    const path = join(dir, 'hub.sqlite');
    const db = openMqttDatabase(path);
    const store = new TwinStore(db);
    store.save('pump-1', twin);
    db.close();
    const raw = new Database(path);
    raw.prepare(`UPDATE device_twins SET reported = '{"x": [1]}'`).run();
    raw.close();
    const reopened = openMqttDatabase(path);
    expect(new TwinStore(reopened).loadAll()).toEqual({ twins: new Map(), corrupt: ['pump-1'] });
    reopened.close();
  });
});
