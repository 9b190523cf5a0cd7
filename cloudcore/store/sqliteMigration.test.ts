import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { makeApp, makeDevice } from '../../test/store/fixtures.js';
import { decideResume } from '../hub/syncCursor.js';
import { SCHEMA_VERSION } from './sqliteSchema.js';
import { openSqliteStore } from './sqliteStore.js';
import { GoneError } from './store.js';

/** The schema version 1 store files were written with (before the log recorded node moves). */
const V1_DDL = `
CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL, compacted_revision INTEGER NOT NULL);
CREATE TABLE objects (kind TEXT NOT NULL, name TEXT NOT NULL, node TEXT, resource_version INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, name));
CREATE INDEX objects_by_kind_node ON objects (kind, node, name);
CREATE TABLE events (revision INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, node TEXT,
  type TEXT NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')), body TEXT NOT NULL);
CREATE INDEX events_by_kind ON events (kind, revision);
CREATE INDEX events_by_node ON events (node, revision);
PRAGMA user_version = 1;
`;

describe('SqliteStore schema migration 1 → 2', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('keeps every object, and drops the version 1 log so each edge resyncs once with a snapshot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgefleet-migrate-'));
    dirs.push(dir);
    const path = join(dir, 'store.db');
    // A version 1 file in the state issue 19 left behind: a device moved from edge-1 to edge-2,
    // logged under edge-2 alone, and edge-1 having acked revision 2 (after the move).
    const app = { ...makeApp('web'), metadata: { ...makeApp('web').metadata, uid: 'u1', generation: 1, resourceVersion: 1 } };
    const device = { ...makeDevice('thermo-1', 'edge-2'), metadata: { name: 'thermo-1', uid: 'u2', generation: 2, resourceVersion: 3 } };
    const db = new Database(path);
    db.exec(V1_DDL);
    db.prepare('INSERT INTO meta VALUES (1, 3, 0)').run();
    db.prepare('INSERT INTO objects VALUES (?, ?, ?, ?, ?)').run('App', 'web', null, 1, JSON.stringify(app));
    db.prepare('INSERT INTO objects VALUES (?, ?, ?, ?, ?)').run('Device', 'thermo-1', 'edge-2', 3, JSON.stringify(device));
    db.prepare('INSERT INTO events VALUES (1, ?, ?, ?, ?, ?)').run('App', 'web', null, 'ADDED', JSON.stringify(app));
    db.prepare('INSERT INTO events VALUES (2, ?, ?, ?, ?, ?)').run('Device', 'thermo-1', 'edge-1', 'ADDED', JSON.stringify(device));
    db.prepare('INSERT INTO events VALUES (3, ?, ?, ?, ?, ?)').run('Device', 'thermo-1', 'edge-2', 'MODIFIED', JSON.stringify(device));
    db.close();

    const store = await openSqliteStore({ path });
    try {
      expect(await store.get('App', 'web')).toEqual(app);
      expect((await store.list('Device', { node: 'edge-2' })).items).toEqual([device]);
      expect(await store.revision()).toBe(4);
      expect(await store.compactedRevision()).toBe(4);
      await expect(store.watch({ node: 'edge-1', fromRevision: 3 }, () => {})).rejects.toBeInstanceOf(GoneError);
      // Even an edge that acked the newest version 1 revision is older than the log now: a snapshot.
      expect(decideResume({ knownEpoch: 'e', helloEpoch: 'e', helloRevision: 3, compactedRevision: 4, currentRevision: 4 }).mode).toBe('snapshot');

      // Writes carry on above the old revisions, and moves are now logged for the node left.
      const movedBack = await store.update({ ...device, spec: { ...device.spec, nodeName: 'edge-1' } });
      expect(movedBack.metadata.resourceVersion).toBe(5);
      const seen: string[] = [];
      const watch = await store.watch({ node: 'edge-2', fromRevision: 4 }, (e) => seen.push(`${e.type} ${e.object.metadata.name}`));
      expect(seen).toEqual(['DELETED thermo-1']);
      watch.close();
    } finally {
      await store.close();
    }
    const check = new Database(path, { readonly: true });
    try {
      expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      check.close();
    }
    // Opening again migrates nothing twice.
    const again = await openSqliteStore({ path });
    expect(await again.compactedRevision()).toBe(4);
    expect(await again.revision()).toBe(5);
    await again.close();
  });
});
