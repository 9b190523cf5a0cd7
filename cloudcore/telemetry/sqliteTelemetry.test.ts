import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TelemetrySample } from '../../protocol/index.js';
import { openSqliteTelemetry, sampleTimeMs, type SqliteTelemetry, type SqliteTelemetryOptions } from './sqliteTelemetry.js';

const T0 = Date.parse('2025-03-01T00:00:00.000Z');
const at = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();
const sample = (offsetMs: number, temp: number): TelemetrySample => ({ t: at(offsetMs), values: { temp } });

describe('sqliteTelemetry', () => {
  let dir: string;
  let clock: number;
  const opened: SqliteTelemetry[] = [];
  const open = async (opts: Partial<SqliteTelemetryOptions> = {}) => {
    const store = await openSqliteTelemetry({ path: join(dir, 'telemetry.db'), now: () => clock, ...opts });
    opened.push(store);
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgefleet-telemetry-'));
    clock = T0 + 60_000;
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('appends a batch and answers oldest first, per device', async () => {
    const store = await open();
    await store.append('pump', [sample(3000, 3), sample(1000, 1), sample(2000, 2)]);
    await store.append('fan', [sample(1500, 99)]);
    expect(await store.query('pump', { limit: 100 })).toEqual([sample(1000, 1), sample(2000, 2), sample(3000, 3)]);
    expect(await store.query('fan', { limit: 100 })).toEqual([sample(1500, 99)]);
    expect(await store.query('nobody', { limit: 100 })).toEqual([]);
  });

  it('pages forward with since (strictly after) and limit; without since gives the newest', async () => {
    const store = await open();
    await store.append('pump', Array.from({ length: 10 }, (_, i) => sample(i * 1000, i)));
    const first = await store.query('pump', { since: at(-1), limit: 4 });
    expect(first.map((s) => s.values.temp)).toEqual([0, 1, 2, 3]);
    const next = await store.query('pump', { since: first.at(-1)!.t, limit: 4 });
    expect(next.map((s) => s.values.temp)).toEqual([4, 5, 6, 7]);
    expect((await store.query('pump', { limit: 3 })).map((s) => s.values.temp)).toEqual([7, 8, 9]);
    expect(await store.query('pump', { since: at(9000), limit: 10 })).toEqual([]);
    await expect(store.query('pump', { since: 'yesterday', limit: 1 })).rejects.toThrow(/ISO time/);
  });

  it('keeps at most maxSamplesPerDevice, dropping the oldest, without touching other devices', async () => {
    const store = await open({ maxSamplesPerDevice: 5 });
    await store.append('other', [sample(0, -1)]);
    await store.append('pump', Array.from({ length: 4 }, (_, i) => sample(i * 1000, i)));
    await store.append('pump', Array.from({ length: 4 }, (_, i) => sample((i + 4) * 1000, i + 4)));
    expect(store.count('pump')).toBe(5);
    expect((await store.query('pump', { limit: 100 })).map((s) => s.values.temp)).toEqual([3, 4, 5, 6, 7]);
    // A late sample older than everything held is itself the oldest: it goes at once.
    await store.append('pump', [sample(500, 0.5)]);
    expect((await store.query('pump', { limit: 100 })).map((s) => s.values.temp)).toEqual([3, 4, 5, 6, 7]);
    // A single batch larger than the bound keeps its newest samples.
    await store.append('pump', Array.from({ length: 12 }, (_, i) => sample(10_000 + i * 1000, 100 + i)));
    expect((await store.query('pump', { limit: 100 })).map((s) => s.values.temp)).toEqual([107, 108, 109, 110, 111]);
    expect(store.count('other')).toBe(1);
  });

  it('ignores a resent sample (same time and values) instead of storing it twice', async () => {
    const store = await open();
    await store.append('pump', [sample(1000, 1), sample(2000, 2)]);
    await store.append('pump', [sample(2000, 2), sample(3000, 3)]);
    expect(store.count('pump')).toBe(3);
    await store.append('pump', [{ t: at(3000), values: { temp: 4 } }]);
    expect(store.count('pump')).toBe(4);
  });

  it('drops samples older than maxAgeMs on append, hides them on query, and sweeps them on open', async () => {
    let store = await open({ maxAgeMs: 10_000 });
    clock = T0 + 5000;
    await store.append('pump', [sample(0, 0), sample(4000, 4)]);
    await store.append('idle', [sample(1000, 1)]);
    clock = T0 + 12_000;
    expect((await store.query('idle', { limit: 10 }))).toEqual([]);
    expect((await store.query('idle', { since: at(-100_000), limit: 10 }))).toEqual([]);
    await store.append('pump', [sample(11_000, 11)]);
    expect(store.count('pump')).toBe(2);
    expect((await store.query('pump', { limit: 10 })).map((s) => s.values.temp)).toEqual([4, 11]);
    expect(store.count('idle')).toBe(1);
    await store.close();
    store = await open({ maxAgeMs: 10_000 });
    expect(store.count('idle')).toBe(0);
    expect(store.count('pump')).toBe(2);
  });

  it('keeps samples across reopen and forgets a dropped device', async () => {
    let store = await open();
    await store.append('pump', [sample(1000, 1)]);
    await store.append('fan', [sample(1000, 2)]);
    await store.close();
    store = await open();
    expect(await store.query('pump', { limit: 10 })).toEqual([sample(1000, 1)]);
    await store.drop('pump');
    expect(await store.query('pump', { limit: 10 })).toEqual([]);
    expect(store.count('fan')).toBe(1);
    await store.append('pump', [sample(2000, 2)]);
    expect(store.count('pump')).toBe(1);
  });

  it('leaves a damaged sample out of answers, counted, and serves the rest', async () => {
    const store = await open();
    await store.append('pump', [sample(1000, 1), sample(2000, 2), sample(3000, 3)]);
    const db = new Database(join(dir, 'telemetry.db'));
    try {
      db.prepare("UPDATE samples SET body = substr(body, 1, 4) WHERE device = 'pump' AND t = ?").run(at(2000));
      db.prepare("UPDATE samples SET body = '[1]' WHERE device = 'pump' AND t = ?").run(at(3000));
    } finally {
      db.close();
    }
    expect(await store.query('pump', { limit: 10 })).toEqual([sample(1000, 1)]);
    expect(store.unreadableSkipped).toBe(2);
  });

  it('keeps mixed value types and refuses work after close', async () => {
    const store = await open();
    const mixed: TelemetrySample = { t: at(1), values: { on: true, label: 'a"b', n: 1.5 } };
    await store.append('pump', [mixed]);
    expect(await store.query('pump', { limit: 1 })).toEqual([mixed]);
    await store.close();
    await expect(store.append('pump', [mixed])).rejects.toThrow(/closed/);
    await expect(store.query('pump', { limit: 1 })).rejects.toThrow(/closed/);
  });

  it('refuses nonsensical bounds', async () => {
    await expect(open({ maxSamplesPerDevice: 0 })).rejects.toThrow(RangeError);
    await expect(open({ maxAgeMs: 0 })).rejects.toThrow(RangeError);
  });

  it('sampleTimeMs parses ISO times and falls back to now', () => {
    expect(sampleTimeMs(at(5), 0)).toBe(T0 + 5);
    expect(sampleTimeMs('garbage', 42)).toBe(42);
  });
});
