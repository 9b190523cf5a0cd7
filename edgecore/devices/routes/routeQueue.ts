import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { RouteDropReason, RouteLimits } from '../../../protocol/index.js';
import { openEdgeSqlite } from '../../sqliteFile.js';
import { admit } from './routeBounds.js';

/**
 * The routes' store-and-forward queue: one SQLite file (`routes.db` in the data directory),
 * apart from the meta database so a busy route never holds up desired-state commits. A message
 * is committed here before the route's subscription returns, and aedes sends the publisher's
 * PUBACK only after every subscriber returned: an acknowledged message is on disk. Rows leave
 * the queue only when the destination confirmed them, or as counted drops.
 */

export interface QueuedMessage { seq: number; topic: string; payload: Buffer; t: string }

/** Counters that survive a restart (kept in the same transaction as the queue change they count). */
export interface DurableRouteCounters {
  matched: number; queued: number; forwarded: number;
  dropped: Record<RouteDropReason, number>;
}

export type EnqueueResult = { queued: true; droppedOldest: number } | { queued: false; reason: 'oversized' };

const DDL = `
CREATE TABLE IF NOT EXISTS route_messages (
  route   TEXT    NOT NULL,
  seq     INTEGER NOT NULL,
  topic   TEXT    NOT NULL,
  payload BLOB    NOT NULL,
  t       TEXT    NOT NULL,
  PRIMARY KEY (route, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS route_state (
  route    TEXT PRIMARY KEY,
  next_seq INTEGER NOT NULL,
  stream   TEXT    NOT NULL,
  counters TEXT    NOT NULL
);
`;

const zeroCounters = (): DurableRouteCounters => ({ matched: 0, queued: 0, forwarded: 0, dropped: { queueFull: 0, oversized: 0 } });

interface StateRow { next_seq: number; stream: string; counters: string }
interface Row { seq: number; topic: string; payload: Buffer; t: string }

export class RouteQueue {
  private readonly db: Database.Database;
  private readonly st;
  /** Depth and bytes per route, kept in memory after the first read (only this process writes). */
  private readonly sizes = new Map<string, { depth: number; bytes: number }>();

  constructor(path: string) {
    // FULL: a message acknowledged to its publisher must survive a power cut, as the outbox does.
    this.db = openEdgeSqlite(path, { synchronous: 'FULL' }, (db) => { db.exec(DDL); return db; });
    const db = this.db;
    this.st = {
      state: db.prepare<[string], StateRow>('SELECT next_seq, stream, counters FROM route_state WHERE route = ?'),
      putState: db.prepare<[string, number, string, string]>('INSERT INTO route_state (route, next_seq, stream, counters) VALUES (?, ?, ?, ?) ON CONFLICT (route) DO UPDATE SET next_seq = excluded.next_seq, counters = excluded.counters'),
      insert: db.prepare<[string, number, string, Buffer, string]>('INSERT INTO route_messages (route, seq, topic, payload, t) VALUES (?, ?, ?, ?, ?)'),
      head: db.prepare<[string, number, number], Row>('SELECT seq, topic, payload, t FROM route_messages WHERE route = ? AND seq > ? ORDER BY seq LIMIT ?'),
      oldestSizes: db.prepare<[string, number], { n: number }>('SELECT length(payload) AS n FROM route_messages WHERE route = ? ORDER BY seq LIMIT ?'),
      dropOldest: db.prepare<[string, string, number]>('DELETE FROM route_messages WHERE route = ? AND seq IN (SELECT seq FROM route_messages WHERE route = ? ORDER BY seq LIMIT ?)'),
      deleteThrough: db.prepare<[string, number]>('DELETE FROM route_messages WHERE route = ? AND seq <= ?'),
      size: db.prepare<[string], { depth: number; bytes: number | null }>('SELECT COUNT(*) AS depth, SUM(length(payload)) AS bytes FROM route_messages WHERE route = ?'),
      routes: db.prepare<[], { route: string }>('SELECT route FROM route_state'),
      purgeMessages: db.prepare<[string]>('DELETE FROM route_messages WHERE route = ?'),
      purgeState: db.prepare<[string]>('DELETE FROM route_state WHERE route = ?'),
    };
  }

  private readState(route: string): { nextSeq: number; stream: string; counters: DurableRouteCounters } {
    const row = this.st.state.get(route);
    if (!row) return { nextSeq: 1, stream: randomUUID(), counters: zeroCounters() };
    let counters = zeroCounters();
    try { counters = { ...counters, ...JSON.parse(row.counters) as DurableRouteCounters }; } catch { /* counted afresh */ }
    return { nextSeq: row.next_seq, stream: row.stream, counters };
  }

  size(route: string): { depth: number; bytes: number } {
    let size = this.sizes.get(route);
    if (!size) {
      const row = this.st.size.get(route)!;
      size = { depth: row.depth, bytes: row.bytes ?? 0 };
      this.sizes.set(route, size);
    }
    return size;
  }

  counters(route: string): DurableRouteCounters {
    return this.readState(route).counters;
  }

  /** The route's stream id (created with its first message): the cloud counts seqs within it. */
  stream(route: string): string {
    const state = this.readState(route);
    if (!this.st.state.get(route)) this.st.putState.run(route, state.nextSeq, state.stream, JSON.stringify(state.counters));
    return state.stream;
  }

  /** Counts the match and queues the message (dropping the oldest if a bound says so), in one transaction. */
  enqueue(route: string, limits: RouteLimits, topic: string, payload: Buffer, t: string): EnqueueResult {
    try {
      return this.enqueueTx(route, limits, topic, payload, t);
    } catch (err) {
      this.sizes.delete(route);
      throw err;
    }
  }

  private enqueueTx(route: string, limits: RouteLimits, topic: string, payload: Buffer, t: string): EnqueueResult {
    return this.db.transaction((): EnqueueResult => {
      const state = this.readState(route);
      const size = this.size(route);
      state.counters.matched++;
      const decision = admit(size.depth, size.bytes, payload.length, limits,
        () => this.st.oldestSizes.all(route, size.depth).map((r) => r.n));
      if (!decision.accept) {
        state.counters.dropped.oversized++;
        this.st.putState.run(route, state.nextSeq, state.stream, JSON.stringify(state.counters));
        return { queued: false, reason: 'oversized' };
      }
      if (decision.dropOldest > 0) {
        const gone = this.st.oldestSizes.all(route, decision.dropOldest).reduce((n, r) => n + r.n, 0);
        this.st.dropOldest.run(route, route, decision.dropOldest);
        size.depth -= decision.dropOldest;
        size.bytes -= gone;
        state.counters.dropped.queueFull += decision.dropOldest;
      }
      this.st.insert.run(route, state.nextSeq, topic, payload, t);
      size.depth++;
      size.bytes += payload.length;
      state.counters.queued++;
      this.st.putState.run(route, state.nextSeq + 1, state.stream, JSON.stringify(state.counters));
      return { queued: true, droppedOldest: decision.dropOldest };
    }).immediate();
  }

  /** Runs `work` (enqueues) in one transaction: one commit, one fsync, for all of it. */
  inOneCommit(work: () => void): void {
    try {
      this.db.transaction(work).immediate();
    } catch (err) {
      // Rolled back: the sizes kept in memory may count what is not there; read them again.
      this.sizes.clear();
      throw err;
    }
  }

  /** The oldest `max` queued messages of a route after seq `after` (those already handed over), in order. */
  head(route: string, max: number, after = 0): QueuedMessage[] {
    return this.st.head.all(route, after, max);
  }

  /** The destination confirmed everything up to `seq`: those rows go, and count as forwarded. */
  confirm(route: string, seq: number): number {
    return this.db.transaction(() => {
      const before = this.st.size.get(route)!;
      this.st.deleteThrough.run(route, seq);
      const after = this.st.size.get(route)!;
      const confirmed = before.depth - after.depth;
      this.sizes.set(route, { depth: after.depth, bytes: after.bytes ?? 0 });
      if (confirmed > 0) {
        const state = this.readState(route);
        state.counters.forwarded += confirmed;
        this.st.putState.run(route, state.nextSeq, state.stream, JSON.stringify(state.counters));
      }
      return confirmed;
    }).immediate();
  }

  /** Routes with state here (queued messages or counters), for removing those no longer bound. */
  routes(): string[] {
    return this.st.routes.all().map((r) => r.route);
  }

  /** A route removed from the node: its queue and counters go. */
  purge(route: string): void {
    this.db.transaction(() => {
      this.st.purgeMessages.run(route);
      this.st.purgeState.run(route);
    }).immediate();
    this.sizes.delete(route);
  }

  close(): void {
    this.db.close();
  }
}
