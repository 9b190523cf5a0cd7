import Database from 'better-sqlite3';

/**
 * Store writes by kind and change type within (fromRevision, toRevision], read from the event
 * log of cloudcore's SQLite store after cloudcore has stopped. Every write is one revision and
 * one event row, so this adds up to the revision delta as long as the log was not compacted
 * past `fromRevision` (the benchmark raises maxEvents so it is not).
 */
export function storeWritesByKind(dbPath: string, fromRevision: number, toRevision: number): {
  byKind: Record<string, Record<string, number>>;
  total: number;
  compactedRevision: number;
} {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare<[number, number], { kind: string; type: string; n: number }>(
      'SELECT kind, type, count(*) AS n FROM events WHERE revision > ? AND revision <= ? GROUP BY kind, type',
    ).all(fromRevision, toRevision);
    const meta = db.prepare<[], { compacted_revision: number }>('SELECT compacted_revision FROM meta WHERE id = 1').get();
    const byKind: Record<string, Record<string, number>> = {};
    let total = 0;
    for (const r of rows) {
      (byKind[r.kind] ??= {})[r.type] = r.n;
      total += r.n;
    }
    return { byKind, total, compactedRevision: meta?.compacted_revision ?? 0 };
  } finally {
    db.close();
  }
}
