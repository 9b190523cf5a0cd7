import type Database from 'better-sqlite3';
import type { Kind } from '../../protocol/index.js';
import { SEALED_KINDS, type SecretSealer } from './secretSealing.js';
import type { Statements } from './sqliteSchema.js';

/**
 * Seals again, under the sealer's first key, every sealed-kind body stored plain (by a version
 * before sealing) or under an older key, in the objects and in the change log (`body` and
 * `prev_body`). It changes how bytes are stored, not what they say: no revision, no event. When
 * a plain body was among them, the file is vacuumed, so the plain text does not linger in free
 * pages or the WAL. Bodies that do not open (a key that is gone) are left for the
 * unreadable-object machinery.
 */
export function resealSqliteStore(db: Database.Database, sql: Statements, sealer: SecretSealer): { objects: number; events: number } {
  let plainSeen = false;
  const reseal = (kind: Kind, name: string, stored: string): string | undefined => {
    if (!sealer.needsReseal(kind, stored)) return undefined;
    const opened = sealer.open(kind, name, stored);
    if (!('body' in opened)) return undefined;
    if (opened.body === stored) plainSeen = true;
    return sealer.seal(kind, name, opened.body);
  };
  const counts = db.transaction(() => {
    let objects = 0;
    let events = 0;
    for (const kind of SEALED_KINDS) {
      for (const row of sql.listByKind.all(kind)) {
        const body = reseal(kind, row.name, row.body);
        if (body !== undefined) { sql.resealObject.run(body, kind, row.name); objects++; }
      }
      for (const row of sql.eventsOfKindAfter.all(kind, -1)) {
        const body = reseal(kind, row.name, row.body);
        const prev = row.prev_body === null ? undefined : reseal(kind, row.name, row.prev_body);
        if (body === undefined && prev === undefined) continue;
        sql.resealEvent.run(body ?? row.body, prev ?? row.prev_body, row.revision);
        events++;
      }
    }
    return { objects, events };
  }).immediate();
  if (plainSeen) {
    db.exec('VACUUM');
    db.pragma('wal_checkpoint(TRUNCATE)');
  }
  return counts;
}
