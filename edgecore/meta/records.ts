import type Database from 'better-sqlite3';
import { z } from 'zod';
import { WorkloadStatusSchema } from '../../protocol/index.js';
import type { RecordKeeper, WorkloadRecord } from '../runtime/runtime.js';
import type { Db } from './schema.js';

/**
 * Runtime records (pid, process start time, last status) so a restarted edgecore can adopt the
 * workloads still running instead of starting duplicates.
 */

const WorkloadRecordSchema = z.strictObject({
  name: z.string().min(1),
  pid: z.number().int().nullable(),
  startTicks: z.number().int().nullable(),
  status: WorkloadStatusSchema,
});

export class SqliteRecordKeeper implements RecordKeeper {
  private readonly upsert: Database.Statement<[string, string]>;
  private readonly delete: Database.Statement<[string]>;
  private readonly all: Database.Statement<[], { name: string; json: string }>;

  constructor(db: Db) {
    this.upsert = db.prepare(`INSERT INTO records (name, json) VALUES (?, ?)
      ON CONFLICT(name) DO UPDATE SET json = excluded.json`);
    this.delete = db.prepare('DELETE FROM records WHERE name = ?');
    this.all = db.prepare('SELECT name, json FROM records ORDER BY name');
  }

  save(record: WorkloadRecord): void {
    // Validate on the way in so load() never meets a record it cannot read.
    const parsed = WorkloadRecordSchema.parse(record);
    this.upsert.run(parsed.name, JSON.stringify(parsed));
  }

  remove(name: string): void {
    this.delete.run(name);
  }

  load(): WorkloadRecord[] {
    return this.all.all().map((row) => {
      const parsed = WorkloadRecordSchema.safeParse(JSON.parse(row.json));
      if (!parsed.success) throw new Error(`stored workload record ${row.name} is corrupt: ${parsed.error.message}`);
      return parsed.data;
    });
  }
}
