import type Database from 'better-sqlite3';
import type { TelemetrySample } from '../../protocol/index.js';
import { openWalDatabase } from '../store/sqliteFile.js';
import { StoreError } from '../store/store.js';
import type { TelemetryStore } from './telemetryStore.js';

/**
 * TelemetryStore on its own SQLite file (WAL), apart from the object store so a busy device
 * never contends with operator writes or bumps the global revision.
 *
 * Rows are keyed (device, t_ms, body) with a UNIQUE index: the edge's outbox resends samples
 * until acked, and a resend of the same sample is ignored rather than stored twice. Bounds are
 * enforced for the appending device inside the append's transaction: samples older than
 * `maxAgeMs` go, then the oldest beyond `maxSamplesPerDevice`. Devices that stop sending are
 * swept by age on open and hidden by age on query.
 */

export const DEFAULT_MAX_SAMPLES_PER_DEVICE = 10_000;
export const DEFAULT_MAX_AGE_MS = 24 * 60 * 60 * 1000;

export interface SqliteTelemetryOptions {
  /** Database file; its directory is created if missing. `:memory:` works for throwaway stores. */
  path: string;
  maxSamplesPerDevice?: number;
  maxAgeMs?: number;
  /** Clock for age bounds (ms since the epoch); tests pass their own. */
  now?: () => number;
}

const DDL = `
CREATE TABLE IF NOT EXISTS samples (
  device TEXT    NOT NULL,
  t_ms   INTEGER NOT NULL,
  t      TEXT    NOT NULL,
  body   TEXT    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS samples_by_device_time ON samples (device, t_ms, body);
`;

interface SampleRow { t: string; body: string }
interface CutRow { t_ms: number; body: string }

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare<[string, number, string, string]>('INSERT OR IGNORE INTO samples (device, t_ms, t, body) VALUES (?, ?, ?, ?)'),
    count: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM samples WHERE device = ?'),
    dropOlder: db.prepare<[string, number]>('DELETE FROM samples WHERE device = ? AND t_ms < ?'),
    sweepOlder: db.prepare<[number]>('DELETE FROM samples WHERE t_ms < ?'),
    // The newest row that must go: it and everything below it in (t_ms, body) order is trimmed.
    cut: db.prepare<[string, number], CutRow>('SELECT t_ms, body FROM samples WHERE device = ? ORDER BY t_ms DESC, body DESC LIMIT 1 OFFSET ?'),
    trim: db.prepare<[string, number, number, string]>('DELETE FROM samples WHERE device = ? AND (t_ms < ? OR (t_ms = ? AND body <= ?))'),
    since: db.prepare<[string, number, number], SampleRow>('SELECT t, body FROM samples WHERE device = ? AND t_ms > ? ORDER BY t_ms, body LIMIT ?'),
    latest: db.prepare<[string, number, number], SampleRow>(
      'SELECT t, body FROM (SELECT t_ms, t, body FROM samples WHERE device = ? AND t_ms >= ? ORDER BY t_ms DESC, body DESC LIMIT ?) ORDER BY t_ms, body'),
    drop: db.prepare<[string]>('DELETE FROM samples WHERE device = ?'),
  };
}

/** Sample time in ms; a time the edge sent that does not parse counts as "now" so it still sorts sensibly. */
export function sampleTimeMs(t: string, now: number): number {
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? now : ms;
}

function readValues(body: string): TelemetrySample['values'] | undefined {
  try {
    const values: unknown = JSON.parse(body);
    return values !== null && typeof values === 'object' && !Array.isArray(values) ? values as TelemetrySample['values'] : undefined;
  } catch {
    return undefined;
  }
}

export async function openSqliteTelemetry(opts: SqliteTelemetryOptions): Promise<SqliteTelemetry> {
  return SqliteTelemetry.open(opts);
}

export class SqliteTelemetry implements TelemetryStore {
  private closed = false;
  private readonly appendTx: (device: string, samples: TelemetrySample[]) => void;
  private readonly sql: ReturnType<typeof prepareStatements>;
  /** Stored samples left out of answers because they could not be read back (since open). */
  unreadableSkipped = 0;
  /** Rows per device, learnt on first append, so the trim query only runs when a bound is crossed. */
  private readonly counts = new Map<string, number>();

  static open(opts: SqliteTelemetryOptions): SqliteTelemetry {
    const maxSamples = opts.maxSamplesPerDevice ?? DEFAULT_MAX_SAMPLES_PER_DEVICE;
    const maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    if (!Number.isInteger(maxSamples) || maxSamples < 1) throw new RangeError(`maxSamplesPerDevice must be a positive integer, got ${maxSamples}`);
    if (!(maxAgeMs > 0)) throw new RangeError(`maxAgeMs must be positive, got ${maxAgeMs}`);
    // Telemetry is disposable: losing the last commits on a power cut is acceptable.
    return openWalDatabase(opts.path, (db) => {
      db.exec(DDL);
      return new SqliteTelemetry(db, maxSamples, maxAgeMs, opts.now ?? Date.now);
    });
  }

  private constructor(
    private readonly db: Database.Database,
    readonly maxSamplesPerDevice: number,
    readonly maxAgeMs: number,
    private readonly now: () => number,
  ) {
    this.sql = prepareStatements(db);
    this.appendTx = db.transaction((device: string, samples: TelemetrySample[]) => {
      const now = this.now();
      let held = this.counts.get(device) ?? this.sql.count.get(device)?.n ?? 0;
      for (const s of samples) held += this.sql.insert.run(device, sampleTimeMs(s.t, now), s.t, JSON.stringify(s.values)).changes;
      held -= this.sql.dropOlder.run(device, now - this.maxAgeMs).changes;
      if (held > this.maxSamplesPerDevice) {
        const cut = this.sql.cut.get(device, this.maxSamplesPerDevice);
        if (cut) held -= this.sql.trim.run(device, cut.t_ms, cut.t_ms, cut.body).changes;
      }
      // Last, so a rolled-back append leaves the cached count alone.
      this.counts.set(device, held);
    });
    this.sql.sweepOlder.run(this.now() - this.maxAgeMs);
  }

  async append(device: string, samples: TelemetrySample[]): Promise<void> {
    this.assertOpen();
    if (samples.length === 0) return;
    this.appendTx(device, samples);
  }

  /**
   * With `since`: the first `limit` samples after it (page forward by passing the last `t`).
   * Without: the newest `limit` samples. Either way oldest first, and nothing older than maxAgeMs.
   */
  async query(device: string, opts: { since?: string; limit: number }): Promise<TelemetrySample[]> {
    this.assertOpen();
    const oldest = this.now() - this.maxAgeMs;
    let rows: SampleRow[];
    if (opts.since !== undefined) {
      const sinceMs = Date.parse(opts.since);
      if (Number.isNaN(sinceMs)) throw new RangeError(`since must be an ISO time, got "${opts.since}"`);
      rows = this.sql.since.all(device, Math.max(sinceMs, oldest - 1), opts.limit);
    } else {
      rows = this.sql.latest.all(device, oldest, opts.limit);
    }
    const samples: TelemetrySample[] = [];
    for (const r of rows) {
      const values = readValues(r.body);
      // Samples are disposable: one a torn write or a disk error damaged is left out (and
      // counted) rather than failing the device's whole series.
      if (values === undefined) this.unreadableSkipped++;
      else samples.push({ t: r.t, values });
    }
    return samples;
  }

  async drop(device: string): Promise<void> {
    this.assertOpen();
    this.sql.drop.run(device);
    this.counts.delete(device);
  }

  /** Samples held for a device (tests and metrics). */
  count(device: string): number {
    this.assertOpen();
    return this.sql.count.get(device)?.n ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('telemetry store is closed', 503);
  }
}
