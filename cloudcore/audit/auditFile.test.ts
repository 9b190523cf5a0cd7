import { appendFileSync, chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../protocol/index.js';
import { AuditFile } from './auditFile.js';
import { matchesAudit, NewestRecords } from './auditQuery.js';

const record = (i: number, over: Partial<AuditRecord> = {}): AuditRecord => ({
  time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), requestId: `r-${i}`, tokenId: 'bootstrap-admin', tokenName: 'bootstrap-admin',
  role: 'admin', method: 'DELETE', verb: 'delete', route: '/api/v1/nodes/:name', target: { kind: 'Node', name: `edge-${i}` }, status: 200,
  sourceAddress: '127.0.0.1', ...over,
});

describe('the audit file', () => {
  const dirs: string[] = [];
  const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'ef-audit-')); dirs.push(d); return d; };
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

  it('is created 0600, and narrowed to 0600 when it was left wider', () => {
    const dir = tempDir();
    new AuditFile({ dir, maxBytes: 1 << 20, files: 2 }).close();
    expect(statSync(join(dir, 'audit.log')).mode & 0o777).toBe(0o600);
    chmodSync(join(dir, 'audit.log'), 0o644);
    new AuditFile({ dir, maxBytes: 1 << 20, files: 2 }).close();
    expect(statSync(join(dir, 'audit.log')).mode & 0o777).toBe(0o600);
  });

  it('rotates by size, keeps the newest N files, and a query reads across them oldest first', async () => {
    const dir = tempDir();
    const lineBytes = JSON.stringify(record(10)).length + 1;
    const file = new AuditFile({ dir, maxBytes: lineBytes * 3, files: 2 });
    for (let i = 10; i < 30; i++) file.append(record(i));
    expect(readdirSync(dir).sort()).toEqual(['audit.log', 'audit.log.1', 'audit.log.2']);
    for (const name of readdirSync(dir)) {
      expect(statSync(join(dir, name)).size).toBeLessThanOrEqual(lineBytes * 3);
      expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    }
    const all = await file.query({}, 100);
    // Two full rotated files of 3 lines and the current one with the last 2 of 20: the rest was rotated away.
    expect(all.items.map((r) => r.requestId)).toEqual(Array.from({ length: 8 }, (_, k) => `r-${22 + k}`));
    expect(all.truncated).toBe(false);
    const newest = await file.query({}, 4);
    expect(newest.items.map((r) => r.requestId)).toEqual(['r-26', 'r-27', 'r-28', 'r-29']);
    expect(newest.truncated).toBe(true);
    file.close();
  });

  it('skips a torn or foreign line instead of failing the query', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'audit.log'), `${JSON.stringify(record(1))}\n{"time":"torn`);
    appendFileSync(join(dir, 'audit.log'), '\nnot json\n');
    const file = new AuditFile({ dir, maxBytes: 1 << 20, files: 1 });
    file.append(record(2));
    const got = await file.query({}, 10);
    expect(got.items.map((r) => r.requestId)).toEqual(['r-1', 'r-2']);
    expect(got.skippedLines).toBe(2);
    expect(readFileSync(join(dir, 'audit.log'), 'utf8')).toContain('"r-2"');
    file.close();
  });
});

describe('audit filters', () => {
  it('match time (since inclusive, until exclusive), verb, kind case-insensitively, name or node, and token name or id', () => {
    const r = record(5, { verb: 'exec', target: { kind: 'Workload', name: 'talker', node: 'edge-1' }, tokenId: 'abc', tokenName: 'alice' });
    expect(matchesAudit(r, { since: new Date(r.time) })).toBe(true);
    expect(matchesAudit(r, { until: new Date(r.time) })).toBe(false);
    expect(matchesAudit(r, { verb: 'exec', kind: 'workload', name: 'talker' })).toBe(true);
    expect(matchesAudit(r, { name: 'edge-1' })).toBe(true);
    expect(matchesAudit(r, { kind: 'node' })).toBe(false);
    expect(matchesAudit(r, { token: 'alice' })).toBe(true);
    expect(matchesAudit(r, { token: 'abc' })).toBe(true);
    expect(matchesAudit(r, { token: 'bob' })).toBe(false);
    expect(matchesAudit({ ...r, target: null }, { kind: 'workload' })).toBe(false);
  });

  it('keep the newest records in order, saying when some were left out', () => {
    const newest = new NewestRecords(3);
    for (let i = 0; i < 10; i++) newest.offer(record(i));
    expect(newest.result().items.map((r) => r.requestId)).toEqual(['r-7', 'r-8', 'r-9']);
    expect(newest.result().truncated).toBe(true);
    const few = new NewestRecords(3);
    few.offer(record(1));
    expect(few.result()).toEqual({ items: [record(1)], truncated: false });
  });
});
