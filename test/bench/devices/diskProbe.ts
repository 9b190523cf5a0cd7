import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { summarizeLatencies, type LatencySummary } from '../figures.js';
import { round } from '../procStats.js';

/**
 * How fast the disk under the run's temp dir commits: single-row upserts in a WAL SQLite file
 * with `synchronous = FULL`, as the edge database (twins + outbox) is opened. The hub commits
 * the reports of one event-loop turn together, so this bounds its batches per second, not its
 * reports per second.
 */

export interface DiskProbe {
  seconds: number;
  commitsPerSecond: number;
  commitMs: LatencySummary;
}

export function probeSyncedCommits(parentDir: string, seconds = 1): DiskProbe {
  const dir = mkdtempSync(join(parentDir, 'disk-probe-'));
  try {
    const db = new Database(join(dir, 'probe.db'));
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
      const upsert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v');
      const filler = 'x'.repeat(300);
      const times: number[] = [];
      const start = performance.now();
      const end = start + seconds * 1000;
      // Bounded in time and count; each value differs so every commit writes a changed page.
      for (let i = 0; i < 1_000_000 && performance.now() < end; i++) {
        const t = performance.now();
        upsert.run(`k${i % 1000}`, `${filler}${i}`);
        times.push(performance.now() - t);
      }
      const elapsed = (performance.now() - start) / 1000;
      const commitMs = summarizeLatencies(times);
      return {
        seconds: round(elapsed, 2),
        commitsPerSecond: Math.round(times.length / elapsed),
        commitMs: { ...commitMs, p50: round(commitMs.p50, 3), p90: round(commitMs.p90, 3), p99: round(commitMs.p99, 3), min: round(commitMs.min, 3), max: round(commitMs.max, 2) },
      };
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
