import type Database from 'better-sqlite3';
import type { Kind } from '../../protocol/index.js';
import { EVENT_KIND, type Statements } from './sqliteSchema.js';

export interface LogRetentionLimits { maxEvents: number; maxEventObjectChanges: number }

/**
 * The change log's two retention windows. The newest `maxEvents` desired-state entries are
 * kept and, apart from them, the newest `maxEventObjectChanges` entries about Event objects.
 * Each window has its own compaction point and trimming one never touches the other, so a
 * node reporting thousands of events a second cannot compact desired state away (which would
 * give operator watches 410 and every edge a snapshot). Without Event entries the
 * desired-state log is the contiguous range (compacted, revision]. Runs inside the store's
 * write transactions; the row counts are read at open and kept in step with every write.
 */
export class LogRetention {
  private rows: { state: number; events: number };
  /** Compacts the whole log through a revision (a desired-state entry that cannot be read). */
  readonly compactThrough: (revision: number) => void;
  /** Compacts only the Event window through a revision (an Event entry that cannot be read). */
  readonly compactEventsThrough: (revision: number) => void;

  constructor(db: Database.Database, private readonly sql: Statements, private readonly limits: LogRetentionLimits) {
    this.rows = this.count();
    this.compactThrough = db.transaction((revision: number) => {
      if (revision <= sql.readMeta.get()!.compacted_revision) return;
      sql.deleteEventsUpTo.run(revision);
      sql.setCompacted.run(revision);
      sql.setEventCompacted.run(Math.max(revision, sql.readEventCompacted.get()!.revision));
      this.rows = this.count();
    }).immediate;
    this.compactEventsThrough = db.transaction((revision: number) => {
      if (revision <= sql.readEventCompacted.get()!.revision) return;
      sql.deleteEventRowsUpTo.run(revision);
      sql.setEventCompacted.run(revision);
      this.rows = this.count();
    }).immediate;
    // A smaller retention than last time takes effect now rather than at the next write.
    db.transaction(() => this.trim()).immediate();
  }

  /** One entry was appended (inside the write's transaction): trims the window it went to. */
  appended(kind: Kind): void {
    if (kind === EVENT_KIND) this.rows.events++;
    else this.rows.state++;
    this.trim();
  }

  private trim(): void {
    const { sql } = this;
    this.rows.state -= trimWindow(this.rows.state - this.limits.maxEvents, sql.readMeta.get()!.compacted_revision,
      { nthOldest: sql.nthOldestStateRow, deleteUpTo: sql.deleteStateRowsUpTo, setCompacted: sql.setCompacted });
    this.rows.events -= trimWindow(this.rows.events - this.limits.maxEventObjectChanges, sql.readEventCompacted.get()!.revision,
      { nthOldest: sql.nthOldestEventRow, deleteUpTo: sql.deleteEventRowsUpTo, setCompacted: sql.setEventCompacted });
  }

  private count(): { state: number; events: number } {
    return { state: this.sql.countStateRows.get()!.n, events: this.sql.countEventRows.get()!.n };
  }
}

/**
 * Deletes the `excess` oldest rows of one retention window (those after its compaction point
 * `compacted`) and moves the point to the newest deleted; returns how many rows went.
 */
function trimWindow(excess: number, compacted: number, window: {
  nthOldest: Statements['nthOldestStateRow']; deleteUpTo: Statements['deleteStateRowsUpTo']; setCompacted: Statements['setCompacted'];
}): number {
  if (excess <= 0) return 0;
  const through = window.nthOldest.get(compacted, excess - 1)!.revision;
  window.deleteUpTo.run(through);
  window.setCompacted.run(through);
  return excess;
}
