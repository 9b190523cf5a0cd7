import type Database from 'better-sqlite3';
import type { RoutedFrame } from '../../protocol/index.js';
import { openWalDatabase } from '../store/sqliteFile.js';

/**
 * Messages edges routed to the cloud (Routes with destination `cloud`), in their own SQLite
 * file (`routed.db`), apart from the object store like telemetry. Each (node, route, stream,
 * seq) is kept once: the edge resends until acked, and a resend is ignored. Per route the
 * newest `maxPerRoute` are kept. Read in arrival order (`id`), which per node is the edge's
 * order, so per topic too.
 */

export const DEFAULT_MAX_ROUTED_PER_ROUTE = 100_000;

const DDL = `
CREATE TABLE IF NOT EXISTS routed (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  node        TEXT    NOT NULL,
  route       TEXT    NOT NULL,
  stream      TEXT    NOT NULL,
  seq         INTEGER NOT NULL,
  topic       TEXT    NOT NULL,
  payload     BLOB    NOT NULL,
  t           TEXT    NOT NULL,
  received_at TEXT    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS routed_once ON routed (node, route, stream, seq);
CREATE INDEX IF NOT EXISTS routed_by_route ON routed (route, id);
`;

export interface StoredRouted { id: number; node: string; seq: number; topic: string; payload: Buffer; t: string; receivedAt: string }

interface Row { id: number; node: string; seq: number; topic: string; payload: Buffer; t: string; received_at: string }

export class RoutedMessages {
  private readonly db: Database.Database;
  private readonly st;
  private readonly appendTx: Database.Transaction<(node: string, frame: RoutedFrame) => number>;

  constructor(path: string, private readonly maxPerRoute = DEFAULT_MAX_ROUTED_PER_ROUTE) {
    this.db = openWalDatabase(path, (db) => {
      // FULL: the edge deletes what the cloud acked, so an acked message must survive a power cut.
      db.pragma('synchronous = FULL');
      db.exec(DDL);
      return db;
    });
    const db = this.db;
    this.st = {
      insert: db.prepare<[string, string, string, number, string, Buffer, string, string]>(
        'INSERT OR IGNORE INTO routed (node, route, stream, seq, topic, payload, t, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      count: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM routed WHERE route = ?'),
      trim: db.prepare<[string, string, number]>('DELETE FROM routed WHERE route = ? AND id IN (SELECT id FROM routed WHERE route = ? ORDER BY id LIMIT ?)'),
      after: db.prepare<[string, number, number], Row>('SELECT id, node, seq, topic, payload, t, received_at FROM routed WHERE route = ? AND id > ? ORDER BY id LIMIT ?'),
      afterOnNode: db.prepare<[string, string, number, number], Row>('SELECT id, node, seq, topic, payload, t, received_at FROM routed WHERE route = ? AND node = ? AND id > ? ORDER BY id LIMIT ?'),
      drop: db.prepare<[string]>('DELETE FROM routed WHERE route = ?'),
    };
    this.appendTx = db.transaction((node: string, frame: RoutedFrame) => {
      const receivedAt = new Date().toISOString();
      let added = 0;
      for (const m of frame.messages) {
        added += this.st.insert.run(node, frame.route, frame.stream, m.seq, m.topic, Buffer.from(m.payload, 'base64'), m.t, receivedAt).changes;
      }
      if (added > 0) {
        const over = this.st.count.get(frame.route)!.n - this.maxPerRoute;
        if (over > 0) this.st.trim.run(frame.route, frame.route, over);
      }
      return added;
    });
  }

  /** Stores a frame's messages (resends ignored); returns how many were new. Throws if it could not store them. */
  append(node: string, frame: RoutedFrame): number {
    return this.appendTx.immediate(node, frame);
  }

  list(route: string, opts: { after: number; limit: number; node?: string }): StoredRouted[] {
    const rows = opts.node === undefined
      ? this.st.after.all(route, opts.after, opts.limit)
      : this.st.afterOnNode.all(route, opts.node, opts.after, opts.limit);
    return rows.map((r) => ({ id: r.id, node: r.node, seq: r.seq, topic: r.topic, payload: r.payload, t: r.t, receivedAt: r.received_at }));
  }

  /** A deleted route's messages go with it. */
  dropRoute(route: string): void {
    this.st.drop.run(route);
  }

  close(): void {
    this.db.close();
  }
}
