import type Database from 'better-sqlite3';
import { z } from 'zod';
import { TelemetrySampleSchema, type TelemetrySample } from '../../../protocol/index.js';
import type { Db } from '../persistence/schema.js';

/**
 * Telemetry acknowledged but not yet in the outbox. A sample is acked once its message's group
 * commit is done, but it reaches the outbox only with its batch (up to a second later, see
 * TelemetryBatcher): without this table a crash of edgecore lost what was acked meanwhile.
 * Each transaction that takes in telemetry writes ONE row holding all of it (one insert per
 * commit, not one per message); rows are deleted in the transaction that writes the last of
 * their samples to the outbox, and what a crash left is sent upstream at the next start.
 */

const JournalBodySchema = z.array(z.tuple([z.string(), z.array(TelemetrySampleSchema)]));
/** One row: the samples of one transaction, by device, in arrival order. */
export type JournalItems = [device: string, samples: TelemetrySample[]][];

export interface RecoveredTelemetry {
  /** Samples of the readable rows, by device, oldest first. */
  byDevice: Map<string, TelemetrySample[]>;
  /** Rows that did not parse (dropped with the others). */
  unreadable: { seq: number; error: string }[];
  /** The newest row read; the recovery deletes up to it. */
  upTo: number;
}

export class TelemetryJournal {
  private readonly insert: Database.Statement<[number, string]>;
  private readonly deleteRange: Database.Statement<[number, number]>;
  private readonly selectAll: Database.Statement<[number], { seq: number; body: string }>;
  private lastSeq: number;
  /** The highest seq in the table when it was opened: rows up to it are a crash's leftovers. */
  readonly leftoverUpTo: number;

  constructor(db: Db) {
    db.exec('CREATE TABLE IF NOT EXISTS device_telemetry_journal (seq INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT');
    this.insert = db.prepare('INSERT INTO device_telemetry_journal (seq, body) VALUES (?, ?)');
    this.deleteRange = db.prepare('DELETE FROM device_telemetry_journal WHERE seq > ? AND seq < ?');
    this.selectAll = db.prepare('SELECT seq, body FROM device_telemetry_journal WHERE seq <= ? ORDER BY seq');
    this.lastSeq = db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM device_telemetry_journal').get()?.seq ?? 0;
    this.leftoverUpTo = this.lastSeq;
  }

  /** A seq for the running transaction's row; a rolled-back transaction leaves a gap. */
  nextSeq(): number {
    return ++this.lastSeq;
  }

  append(seq: number, items: JournalItems): void {
    this.insert.run(seq, JSON.stringify(items));
  }

  /** Deletes the rows with `after` < seq < `before`: their samples are all in the outbox now. */
  deleteBetween(after: number, before: number): void {
    this.deleteRange.run(after, before);
  }

  /** Reads the rows up to `upTo`, leniently: a row that does not parse is reported, not thrown. */
  read(upTo: number): RecoveredTelemetry {
    const byDevice = new Map<string, TelemetrySample[]>();
    const unreadable: { seq: number; error: string }[] = [];
    for (const row of this.selectAll.all(upTo)) {
      let parsed;
      try {
        parsed = JournalBodySchema.safeParse(JSON.parse(row.body));
      } catch (err) {
        unreadable.push({ seq: row.seq, error: (err as Error).message });
        continue;
      }
      if (!parsed.success) {
        unreadable.push({ seq: row.seq, error: parsed.error.issues[0]?.message ?? 'does not parse' });
        continue;
      }
      for (const [device, samples] of parsed.data) {
        const list = byDevice.get(device);
        if (list === undefined) byDevice.set(device, [...samples]);
        else list.push(...samples);
      }
    }
    return { byDevice, unreadable, upTo };
  }
}
