import type Database from 'better-sqlite3';
import { UpstreamEntrySchema, type UpstreamEntry } from '../../protocol/index.js';
import { STATE_KEYS, type Db, type StateTable } from './schema.js';

/**
 * The upstream outbox: everything the edge owes the cloud, persisted until the cloud acks it.
 * Seqs grow monotonically within an epoch and are never reused, so a cumulative ack
 * ("everything ≤ seq is durable") is unambiguous across reconnects and restarts.
 */

export type UpstreamKind = UpstreamEntry['kind'];
export type UpstreamBody<K extends UpstreamKind> = Extract<UpstreamEntry, { kind: K }>['body'];
/** An entry before the outbox gives it its seq. */
export type NewUpstreamEntry = UpstreamEntry extends infer E ? (E extends UpstreamEntry ? Omit<E, 'seq'> : never) : never;

export interface OutboxLimits {
  /** Most pending events kept; past it the oldest are dropped. Default 10 000. */
  maxEvents?: number;
  /** Pending events older than this (by enqueue time) are dropped. Default 7 days. */
  maxEventAgeMs?: number;
}

export const DEFAULT_OUTBOX_LIMITS: Required<OutboxLimits> = {
  maxEvents: 10_000,
  maxEventAgeMs: 7 * 24 * 3600 * 1000,
};

export interface OutboxStats {
  depth: number;
  /**
   * Entries dropped over the life of this database: events and telemetry by the bounds, and
   * any entry this edgecore cannot read (see pending()).
   */
  dropped: number;
  oldestSeq: number | null;
}

const AGE_PRUNE_EVERY_MS = 1_000;

/** `kind IN ('a', 'b')` for a set of kinds. */
const kindIn = (kinds: ReadonlySet<UpstreamKind>) => `kind IN (${[...kinds].map((k) => `'${k}'`).join(', ')})`;

/** The bounded spool: events and telemetry batches share the count and age limits. */
const SPOOLED = new Set<UpstreamKind>(['event', 'telemetry']);
const SPOOLED_SQL = kindIn(SPOOLED);

/** Kinds where only the newest entry per key matters (a status, a twin's reported section). */
const COALESCING = new Set<UpstreamKind>(['workloadStatus', 'twinReported']);
/** The WHERE of the partial index `outbox_coalescing_key` (schema v3), spelled as SQLite must see it to use it. */
export const COALESCING_SQL = kindIn(COALESCING);

interface OutboxRow { seq: number; kind: string; key: string; body: string }

export function resolveLimits(limits: OutboxLimits | undefined): Required<OutboxLimits> {
  const resolved = { ...DEFAULT_OUTBOX_LIMITS, ...stripUndefined(limits ?? {}) };
  if (!Number.isSafeInteger(resolved.maxEvents) || resolved.maxEvents < 1) {
    throw new RangeError(`maxEvents must be a positive integer, got ${resolved.maxEvents}`);
  }
  if (!(resolved.maxEventAgeMs > 0)) {
    throw new RangeError(`maxEventAgeMs must be positive, got ${resolved.maxEventAgeMs}`);
  }
  return resolved;
}

function stripUndefined(limits: OutboxLimits): OutboxLimits {
  const out: OutboxLimits = {};
  if (limits.maxEvents !== undefined) out.maxEvents = limits.maxEvents;
  if (limits.maxEventAgeMs !== undefined) out.maxEventAgeMs = limits.maxEventAgeMs;
  return out;
}

export interface EnqueueOptions {
  /**
   * The caller built every body from values its own zod schemas parsed (the device hub: twins
   * and samples from checked payloads), so they are not parsed again here; a second parse was
   * ~3 % of the hub's CPU at saturation. A body that is wrong all the same is still caught when
   * it is read back to be sent (`pending` drops and counts it), so it never reaches the cloud.
   */
  bodiesParsed?: boolean;
}

export class Outbox {
  private readonly insert: Database.Statement<[number, string, string, string, number]>;
  private readonly deleteStatusKey: Database.Statement<[string, string]>;
  private readonly countEvents: Database.Statement<[], { n: number }>;
  private readonly dropOldestEvents: Database.Statement<[number]>;
  private readonly oldestSpooledAt: Database.Statement<[], { created_at: number }>;
  private readonly dropEventsBefore: Database.Statement<[number]>;
  private readonly selectPending: Database.Statement<[number], OutboxRow>;
  private readonly deleteUpTo: Database.Statement<[number]>;
  private readonly countEventsUpTo: Database.Statement<[number], { n: number }>;
  /**
   * When the age bound was last checked: once a second is plenty for a bound of days, and the
   * check walks past every coalescing entry at the head of the table to the oldest spooled one.
   */
  private lastAgePruneAt = -Infinity;
  private readonly stats: Database.Statement<[], { depth: number; oldest: number | null }>;
  private readonly enqueueTx: (rows: readonly { kind: UpstreamKind; key: string; body: string }[]) => number[];
  private readonly pruneTx: () => void;
  private readonly ackTx: (seq: number) => number;
  private readonly dropUnreadableTx: (rows: readonly OutboxRow[]) => void;

  constructor(
    db: Db,
    private readonly state: StateTable,
    private readonly limits: Required<OutboxLimits>,
    private readonly now: () => number,
  ) {
    this.insert = db.prepare('INSERT INTO outbox (seq, kind, key, body, created_at) VALUES (?, ?, ?, ?, ?)');
    this.deleteStatusKey = db.prepare(`DELETE FROM outbox WHERE kind = ? AND key = ? AND ${COALESCING_SQL}`);
    this.countEvents = db.prepare(`SELECT count(*) AS n FROM outbox WHERE ${SPOOLED_SQL}`);
    this.dropOldestEvents = db.prepare(
      // NOT INDEXED: walk the table in seq order and stop after LIMIT rows; an index on kind would
      // make SQLite sort every spooled row first (milliseconds per enqueue with a full spool).
      `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox NOT INDEXED WHERE ${SPOOLED_SQL} ORDER BY seq LIMIT ?)`);
    // Spooled rows are not indexed: the age bound looks at the oldest one (the head of the
    // table) and scans only when that one has expired.
    this.oldestSpooledAt = db.prepare(`SELECT created_at FROM outbox NOT INDEXED WHERE ${SPOOLED_SQL} ORDER BY seq LIMIT 1`);
    this.dropEventsBefore = db.prepare(`DELETE FROM outbox WHERE ${SPOOLED_SQL} AND created_at < ?`);
    this.selectPending = db.prepare('SELECT seq, kind, key, body FROM outbox ORDER BY seq LIMIT ?');
    this.deleteUpTo = db.prepare('DELETE FROM outbox WHERE seq <= ?');
    // NOT INDEXED: a range of the primary key (what the ack removes), not every spooled row.
    this.countEventsUpTo = db.prepare(`SELECT count(*) AS n FROM outbox NOT INDEXED WHERE seq <= ? AND ${SPOOLED_SQL}`);
    this.stats = db.prepare('SELECT count(*) AS depth, min(seq) AS oldest FROM outbox');

    const enqueue = db.transaction((rows: readonly { kind: UpstreamKind; key: string; body: string }[]): number[] => {
      let seq = this.state.getNumber(STATE_KEYS.lastSeq);
      const createdAt = this.now();
      let spooled = 0;
      const seqs = rows.map(({ kind, key, body }) => {
        seq++;
        // Only the newest status of a workload matters; the superseded entry is dropped and the
        // new one goes to the back of the queue with a fresh seq (the cloud keeps the latest seq).
        if (COALESCING.has(kind)) this.deleteStatusKey.run(kind, key);
        this.insert.run(seq, kind, key, body, createdAt);
        if (SPOOLED.has(kind)) spooled++;
        return seq;
      });
      this.state.setNumber(STATE_KEYS.lastSeq, seq);
      if (spooled > 0) {
        this.addSpooled(spooled);
        this.pruneEvents();
      }
      return seqs;
    });
    this.enqueueTx = (rows) => enqueue.immediate(rows);
    const prune = db.transaction(() => this.pruneEvents());
    this.pruneTx = () => prune.immediate();
    const ack = db.transaction((upTo: number): number => {
      // If the cloud holds seqs this database never issued (e.g. the file was restored from a
      // backup under the same epoch), new entries must still get seqs above them, or the cloud
      // would take them for duplicates and drop them.
      if (upTo > this.state.getNumber(STATE_KEYS.lastSeq)) this.state.setNumber(STATE_KEYS.lastSeq, upTo);
      this.addSpooled(-this.countEventsUpTo.get(upTo)!.n);
      return this.deleteUpTo.run(upTo).changes;
    });
    this.ackTx = (upTo) => ack.immediate(upTo);
    const deleteSeq = db.prepare<[number]>('DELETE FROM outbox WHERE seq = ?');
    const dropUnreadable = db.transaction((rows: readonly OutboxRow[]) => {
      let spooled = 0;
      for (const row of rows) {
        if (deleteSeq.run(row.seq).changes === 0) continue;
        if (SPOOLED.has(row.kind as UpstreamKind)) spooled++;
        this.state.setNumber(STATE_KEYS.dropped, this.state.getNumber(STATE_KEYS.dropped) + 1);
      }
      this.addSpooled(-spooled);
    });
    this.dropUnreadableTx = (rows) => dropUnreadable.immediate(rows);
    // The spool counter is rebuilt from the rows (a file from before it existed, or edited by hand),
    // and limits may have been lowered since the last run: apply them before anything is sent.
    db.transaction(() => {
      this.state.setNumber(STATE_KEYS.spooled, this.countEvents.get()!.n);
      this.pruneEvents();
    }).immediate();
  }

  /** Validates and persists one entry; returns its seq. Throws (storing nothing) on a bad body. */
  enqueue<K extends UpstreamKind>(kind: K, key: string, body: UpstreamBody<K>): number {
    return this.enqueueMany([{ kind, key, body } as NewUpstreamEntry])[0]!;
  }

  /**
   * Validates and persists entries in order, in one transaction (a savepoint inside the
   * caller's); returns their seqs. Throws, storing none of them, if one is invalid. Entries
   * past the event bounds are pruned once, at the end (a batch larger than maxEvents keeps its
   * newest events).
   */
  enqueueMany(entries: readonly NewUpstreamEntry[], options: EnqueueOptions = {}): number[] {
    if (entries.length === 0) return [];
    if (options.bodiesParsed === true) return this.enqueueTx(entries.map(({ kind, key, body }) => ({ kind, key, body: JSON.stringify(body) })));
    const rows = entries.map(({ kind, key, body }) => {
      const parsed = UpstreamEntrySchema.safeParse({ seq: 1, kind, key, body });
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new TypeError(`invalid outbox ${kind} entry: ${issue.path.join('.')}: ${issue.message}`);
      }
      return { kind, key, body: JSON.stringify(parsed.data.body) };
    });
    return this.enqueueTx(rows);
  }

  /**
   * Up to `limit` pending entries, oldest first. An entry this edgecore cannot read (written
   * under a schema it no longer accepts, or edited by hand) could never be sent: it is dropped
   * and counted in `dropped`, with `onUnreadable` told, instead of blocking every later entry.
   */
  pending(limit: number, onUnreadable?: (seq: number, error: string) => void): UpstreamEntry[] {
    this.pruneTx();
    const size = Math.max(0, Math.floor(limit));
    for (;;) {
      const rows = this.selectPending.all(size);
      const entries: UpstreamEntry[] = [];
      const unreadable: OutboxRow[] = [];
      for (const row of rows) {
        const parsed = parseRow(row);
        if (typeof parsed === 'string') {
          unreadable.push(row);
          onUnreadable?.(row.seq, parsed);
        } else {
          entries.push(parsed);
        }
      }
      if (unreadable.length > 0) this.dropUnreadableTx(unreadable);
      // A page of nothing but unreadable rows must not hide the readable ones behind it.
      if (entries.length > 0 || unreadable.length === 0 || rows.length < size) return entries;
    }
  }

  /** Cumulative ack: removes every entry with seq ≤ `seq`; returns how many were removed. */
  ackUpTo(seq: number): number {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`ack seq must be a non-negative integer, got ${seq}`);
    return this.ackTx(seq);
  }

  outboxStats(): OutboxStats {
    const row = this.stats.get()!;
    return { depth: row.depth, dropped: this.state.getNumber(STATE_KEYS.dropped), oldestSeq: row.oldest };
  }

  /** Drops events past the age and count bounds, counting them. Call inside a transaction. */
  private pruneEvents(): void {
    const now = this.now();
    let dropped = 0;
    if (now - this.lastAgePruneAt >= AGE_PRUNE_EVERY_MS) {
      this.lastAgePruneAt = now;
      // Entries are enqueued in seq order, so the oldest by seq is the oldest by time unless the
      // clock went back; an entry stamped earlier than the head then goes when the head does.
      const cutoff = now - this.limits.maxEventAgeMs;
      const oldest = this.oldestSpooledAt.get();
      if (oldest !== undefined && oldest.created_at < cutoff) dropped += this.dropEventsBefore.run(cutoff).changes;
    }
    const excess = this.state.getNumber(STATE_KEYS.spooled) - dropped - this.limits.maxEvents;
    // Oldest first, by seq: the scan stops after `excess` rows, however full the spool is.
    if (excess > 0) dropped += this.dropOldestEvents.run(excess).changes;
    if (dropped === 0) return;
    this.addSpooled(-dropped);
    this.state.setNumber(STATE_KEYS.dropped, this.state.getNumber(STATE_KEYS.dropped) + dropped);
  }

  /** Moves the spool counter (inside the transaction that changed the rows). */
  private addSpooled(delta: number): void {
    if (delta === 0) return;
    this.state.setNumber(STATE_KEYS.spooled, Math.max(0, this.state.getNumber(STATE_KEYS.spooled) + delta));
  }
}

/** The entry, or what is wrong with the stored row. */
function parseRow(row: OutboxRow): UpstreamEntry | string {
  let body: unknown;
  try {
    body = JSON.parse(row.body);
  } catch (err) {
    return `body is not JSON: ${(err as Error).message}`;
  }
  const parsed = UpstreamEntrySchema.safeParse({ seq: row.seq, kind: row.kind, key: row.key, body });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  return `${issue.path.join('.') || 'entry'}: ${issue.message}`;
}
