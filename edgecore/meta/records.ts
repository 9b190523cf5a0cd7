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

/** What recovery needs of a record that does not parse as a whole. */
const SalvageSchema = z.object({ pid: z.number().int(), startTicks: z.number().int() });

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

  /**
   * Every stored record. One this edgecore cannot read in full (written under an older schema,
   * or edited by hand) must not stop the start: its pid and start ticks are taken when they can
   * be read, so the process it names is still stopped (processRuntime.recover), and its status
   * is given as Stopped; with no readable pid it only names the workload.
   */
  load(): WorkloadRecord[] {
    return this.all.all().map((row) => {
      let raw: unknown;
      try {
        raw = JSON.parse(row.json);
      } catch {
        raw = {};
      }
      const parsed = WorkloadRecordSchema.safeParse(raw);
      if (parsed.success) return parsed.data;
      const process = SalvageSchema.safeParse(raw);
      return {
        name: row.name,
        pid: process.success ? process.data.pid : null,
        startTicks: process.success ? process.data.startTicks : null,
        status: { state: 'Stopped', restarts: 0, generation: 0, observedAt: new Date(0).toISOString() },
      };
    });
  }
}
