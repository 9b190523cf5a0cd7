import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { makeApp, makeEdgeEvent } from '../../test/store/fixtures.js';
import { openSqliteStore } from './sqliteStore.js';
import { GoneError } from './store.js';

/**
 * Issue 20: Event objects have their own retention window in the change log, so a flood of
 * events never compacts desired state (which gave every operator watch 410 and every edge a
 * snapshot). Real SQLite file.
 */
describe('the change log keeps Events apart from desired state', () => {
  let dir: string;
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('a flood of events trims only the Event window; desired state watches still resume', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-retention-'));
    const path = join(dir, 'cloudcore.db');
    const store = await openSqliteStore({ path, maxEvents: 10, maxEventObjectChanges: 5 });
    try {
      await store.create(makeApp('web'));
      const before = await store.revision();
      for (let i = 0; i < 50; i++) await store.create(makeEdgeEvent(`flood.${i}`, 'node-a'));
      expect(await store.compactedRevision()).toBe(0);

      // Desired state: an operator watch and a node's watch from before the flood still replay.
      const apps: string[] = [];
      (await store.watch({ kind: 'App', fromRevision: 0 }, (e) => apps.push(e.object.metadata.name))).close();
      expect(apps).toEqual(['web']);
      const nodeA: string[] = [];
      (await store.watch({ node: 'node-a', fromRevision: before }, (e) => nodeA.push(e.object.metadata.name))).close();
      expect(nodeA).toEqual(['flood.45', 'flood.46', 'flood.47', 'flood.48', 'flood.49']); // the Events still held
      // A watch of Events alone from before its window is told so.
      await expect(store.watch({ kind: 'Event', fromRevision: before }, () => {})).rejects.toBeInstanceOf(GoneError);
      const events: string[] = [];
      (await store.watch({ kind: 'Event', fromRevision: before + 45 }, (e) => events.push(e.object.metadata.name))).close();
      expect(events).toHaveLength(5);
      // The objects themselves stay (their own trim is the lifecycle controller's).
      expect((await store.list('Event')).items).toHaveLength(50);

      // Desired-state writes past their window compact theirs, and leave the Event window alone.
      let app = (await store.get('App', 'web'))!;
      for (let i = 0; i < 15; i++) app = await store.update({ ...app, metadata: { ...app.metadata, labels: { step: String(i) } } });
      expect(await store.compactedRevision()).toBeGreaterThan(before);
      await expect(store.watch({ kind: 'App', fromRevision: 0 }, () => {})).rejects.toBeInstanceOf(GoneError);
    } finally {
      await store.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare("SELECT count(*) AS n FROM events WHERE kind = 'Event'").get()).toEqual({ n: 5 });
      expect(db.prepare("SELECT count(*) AS n FROM events WHERE kind != 'Event'").get()).toEqual({ n: 10 });
    } finally {
      db.close();
    }
    // Reopened, the counts and both compaction points carry on.
    const again = await openSqliteStore({ path, maxEvents: 10, maxEventObjectChanges: 5 });
    try {
      const late = await again.create(makeEdgeEvent('late', 'node-a'));
      await expect(again.watch({ kind: 'Event', fromRevision: 0 }, () => {})).rejects.toBeInstanceOf(GoneError);
      const events: number[] = [];
      (await again.watch({ node: 'node-a', fromRevision: await again.compactedRevision() }, (e) => events.push(e.revision))).close();
      expect(events).toEqual([late.metadata.resourceVersion]);
    } finally {
      await again.close();
    }
  });

  it('an unreadable Event entry compacts only the Event window: desired-state and node watches go on without it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-retention-'));
    const path = join(dir, 'cloudcore.db');
    const store = await openSqliteStore({ path });
    try {
      await store.create(makeApp('web'));
      const torn = await store.create(makeEdgeEvent('torn', 'node-a'));
      const after = await store.create(makeEdgeEvent('after', 'node-a'));
      const db = new Database(path);
      try {
        db.prepare('UPDATE events SET body = substr(body, 1, 25) WHERE revision = ?').run(torn.metadata.resourceVersion);
      } finally {
        db.close();
      }
      const seen: string[] = [];
      (await store.watch({ node: 'node-a', fromRevision: 0 }, (e) => seen.push(e.object.metadata.name))).close();
      expect(seen).toEqual(['after']);
      expect(await store.compactedRevision()).toBe(0);
      const apps: string[] = [];
      (await store.watch({ kind: 'App', fromRevision: 0 }, (e) => apps.push(e.object.metadata.name))).close();
      expect(apps).toEqual(['web']);
      // A watch of Events alone from before it is told it cannot have them all.
      await expect(store.watch({ kind: 'Event', fromRevision: 0 }, () => {})).rejects.toBeInstanceOf(GoneError);
      const events: string[] = [];
      (await store.watch({ kind: 'Event', fromRevision: torn.metadata.resourceVersion! }, (e) => events.push(e.object.metadata.name))).close();
      expect(events).toEqual([after.metadata.name]);
    } finally {
      await store.close();
    }
  });
});
