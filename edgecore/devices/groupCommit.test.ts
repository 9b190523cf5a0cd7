import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupCommit, type GroupCommitOptions } from './groupCommit.js';
import { openMqttDatabase, type Db } from './persistence/schema.js';

let dir: string;
let db: Db;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
  path = join(dir, 'edge.db');
  db = openMqttDatabase(path);
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL) STRICT');
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What another connection (another process, after a crash) finds committed in the file. */
function committedRows(): Record<string, number> {
  const reader = new Database(path, { readonly: true });
  try {
    return Object.fromEntries(reader.prepare<[], { k: string; v: number }>('SELECT k, v FROM t ORDER BY k').all().map((r) => [r.k, r.v]));
  } finally {
    reader.close();
  }
}

function harness(overrides: Partial<GroupCommitOptions> = {}) {
  const log = { transactions: 0, rollbacks: [] as string[], workErrors: [] as string[] };
  const insert = db.prepare<[string, number]>('INSERT INTO t (k, v) VALUES (?, ?)');
  const tx = db.transaction((fn: () => void) => fn());
  const commit = new GroupCommit({
    transaction: (fn) => { log.transactions++; tx.immediate(fn); },
    maxBatch: 100,
    beforeCommit: () => {},
    onRollback: (err) => log.rollbacks.push(err.message),
    onWorkError: (err) => log.workErrors.push(err.message),
    ...overrides,
  });
  return { commit, log, put: (k: string, v: number) => insert.run(k, v) };
}

const settled = (commit: GroupCommit, work: () => (() => void) | undefined) =>
  new Promise<{ err: Error | null; rows: Record<string, number> }>((resolve) => {
    commit.add(work, (err) => resolve({ err, rows: committedRows() }));
  });

describe('GroupCommit', () => {
  it('commits the work of one event-loop turn in one transaction and calls done only after it', async () => {
    const { commit, log, put } = harness();
    const published: string[] = [];
    const results = await Promise.all(['a', 'b', 'c'].map((k, i) => settled(commit, () => {
      put(k, i);
      return () => published.push(k);
    })));
    expect(log.transactions).toBe(1);
    // Every done saw all three rows on disk, through another connection, and after the publishes.
    for (const r of results) expect(r).toEqual({ err: null, rows: { a: 0, b: 1, c: 2 } });
    expect(published).toEqual(['a', 'b', 'c']);
    expect(commit.stats()).toEqual({ transactions: 1, items: 3, rollbacks: 0 });
  });

  it('commits a full batch at once, inside add()', () => {
    const { commit, log, put } = harness({ maxBatch: 2 });
    const done: (Error | null)[] = [];
    commit.add(() => { put('a', 1); }, (err) => done.push(err));
    expect(log.transactions).toBe(0);
    commit.add(() => { put('b', 2); }, (err) => done.push(err));
    expect(log.transactions).toBe(1);
    expect(done).toEqual([null, null]);
    expect(committedRows()).toEqual({ a: 1, b: 2 });
    expect(commit.pending).toBe(0);
  });

  it('rolls the whole batch back when the commit fails: every done gets the error, nothing is published', async () => {
    const { commit, log, put } = harness({ beforeCommit: () => put('dup', 0) });
    put('dup', 0); // outside any batch: the batch's own insert of "dup" will violate the key
    const published: string[] = [];
    const results = await Promise.all(['a', 'b'].map((k) => settled(commit, () => {
      put(k, 1);
      return () => published.push(k);
    })));
    for (const r of results) {
      expect(r.err?.message).toMatch(/UNIQUE constraint failed/);
      expect(r.rows).toEqual({ dup: 0 });
    }
    expect(log.rollbacks).toHaveLength(1);
    expect(published).toEqual([]);
    expect(commit.stats()).toEqual({ transactions: 0, items: 0, rollbacks: 1 });
  });

  it('a piece of work that throws fails alone; the rest of its batch commits', async () => {
    const { commit, log, put } = harness();
    const [bad, good] = await Promise.all([
      settled(commit, () => { throw new Error('bug'); }),
      settled(commit, () => { put('ok', 1); return undefined; }),
    ]);
    expect(bad.err?.message).toBe('bug');
    expect(good).toEqual({ err: null, rows: { ok: 1 } });
    expect(log.workErrors).toEqual(['bug']);
    // The failed piece is not counted as committed work.
    expect(commit.stats()).toEqual({ transactions: 1, items: 1, rollbacks: 0 });
  });

  it('now() commits what is queued first, then its own work, before returning', () => {
    const { commit, log, put } = harness();
    const order: string[] = [];
    commit.add(() => { put('queued', 1); order.push('queued'); }, () => order.push('queued done'));
    commit.now(() => {
      put('now', 2);
      order.push('now');
      return () => order.push('now published');
    });
    expect(order).toEqual(['queued', 'queued done', 'now', 'now published']);
    expect(log.transactions).toBe(2);
    expect(committedRows()).toEqual({ now: 2, queued: 1 });
    expect(() => commit.now(() => { put('now', 3); return undefined; })).toThrow(/UNIQUE/);
    expect(log.rollbacks).toHaveLength(1);
    expect(commit.stats()).toEqual({ transactions: 2, items: 2, rollbacks: 1 });
  });

  it('stop() commits what is queued and refuses what comes later without running it', async () => {
    const { commit, put } = harness();
    const first = settled(commit, () => { put('before', 1); return undefined; });
    commit.stop(new Error('closing'));
    expect(await first).toEqual({ err: null, rows: { before: 1 } });
    let ran = false;
    const late = await settled(commit, () => { ran = true; return undefined; });
    expect(late.err?.message).toBe('closing');
    expect(ran).toBe(false);
  });

  it('refuses a batch size below 1', () => {
    expect(() => harness({ maxBatch: 0 })).toThrow(/maxBatch/);
  });
});
