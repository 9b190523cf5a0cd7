import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openMqttDatabase, type Db } from '../persistence/schema.js';
import { makeDevice } from '../../../test/helpers/devices/deviceHubFixtures.js';
import { emptyTwin, type DeviceTwinState, type TwinReportedEntry } from './twinEngine.js';
import { TwinLedger } from './twinLedger.js';
import { TwinStore } from './twinStore.js';

let dir: string;
let db: Db;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'twin-ledger-'));
  db = openMqttDatabase(join(dir, 'edge.db'));
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const pump = makeDevice('pump-1');
const fan = makeDevice('fan-1');
const devices = new Map([[pump.metadata.name, pump], [fan.metadata.name, fan]]);
const twin = (temperature: number, version: number): DeviceTwinState => ({ ...emptyTwin(), reported: { temperature }, version });

/** Runs `fn` and the ledger's end-of-transaction step in one transaction; returns the entries emitted. */
function transaction(ledger: TwinLedger, fn: () => void): TwinReportedEntry[] {
  const entries: TwinReportedEntry[] = [];
  db.transaction(() => {
    fn();
    ledger.writePending(devices, (e) => entries.push(e));
  })();
  return entries;
}

describe('TwinLedger', () => {
  it('saves each changed twin once and sends one entry per device, with its last state', () => {
    let clock = 1_000;
    const ledger = new TwinLedger(new TwinStore(db), { reportRefreshMs: 60_000, now: () => clock });
    const entries = transaction(ledger, () => {
      for (let i = 1; i <= 3; i++) {
        ledger.put('pump-1', twin(20 + i, i));
        ledger.report(pump);
      }
      ledger.ensure('fan-1');
    });
    expect(entries.map((e) => [e.key, e.body.twin.version, e.body.twin.reported])).toEqual([['pump-1', 3, { temperature: 23 }]]);
    expect(new TwinLedger(new TwinStore(db), { reportRefreshMs: 60_000 }).get('pump-1')).toMatchObject({ reported: { temperature: 23 }, version: 3 });
    expect(new TwinLedger(new TwinStore(db), { reportRefreshMs: 60_000 }).names().sort()).toEqual(['fan-1', 'pump-1']);
    // A later transaction with nothing to do writes and sends nothing.
    clock += 1;
    expect(transaction(ledger, () => {})).toEqual([]);
  });

  it('touch moves lastSeen in memory and goes upstream only once reportRefreshMs has passed', () => {
    let clock = 1_000;
    const ledger = new TwinLedger(new TwinStore(db), { reportRefreshMs: 60_000, now: () => clock });
    transaction(ledger, () => { ledger.put('pump-1', twin(20, 1)); ledger.report(pump); });
    clock += 30_000;
    expect(transaction(ledger, () => ledger.touch(pump, '2024-05-01T10:00:30Z'))).toEqual([]);
    expect(ledger.get('pump-1')!.lastSeen).toBe('2024-05-01T10:00:30Z');
    expect(new TwinStore(db).loadAll().twins.get('pump-1')!.lastSeen).toBeNull();
    clock += 31_000;
    const entries = transaction(ledger, () => ledger.touch(pump, '2024-05-01T10:01:01Z'));
    expect(entries.map((e) => e.body.lastSeen)).toEqual(['2024-05-01T10:01:01Z']);
    expect(new TwinStore(db).loadAll().twins.get('pump-1')!.lastSeen).toBe('2024-05-01T10:01:01Z');
  });

  it('reports a device once per generation until a rollback forgets that', () => {
    const ledger = new TwinLedger(new TwinStore(db), { reportRefreshMs: 60_000 });
    transaction(ledger, () => ledger.ensure('pump-1'));
    expect(ledger.needsReport(pump)).toBe(true);
    transaction(ledger, () => ledger.report(pump));
    expect(ledger.needsReport(pump)).toBe(false);
    expect(ledger.needsReport(makeDevice('pump-1', { generation: 2 }))).toBe(true);
    ledger.rollback(devices.keys());
    expect(ledger.needsReport(pump)).toBe(true);
  });

  it('rollback puts the twins back to what is committed', () => {
    const ledger = new TwinLedger(new TwinStore(db), { reportRefreshMs: 60_000 });
    transaction(ledger, () => ledger.put('pump-1', twin(20, 1)));
    expect(() => db.transaction(() => {
      ledger.put('pump-1', twin(99, 2));
      ledger.remove('fan-1');
      ledger.writePending(devices, () => {});
      throw new Error('disk full');
    })()).toThrow('disk full');
    ledger.rollback(devices.keys());
    expect(ledger.get('pump-1')).toMatchObject({ reported: { temperature: 20 }, version: 1 });
    // fan-1 never had a committed row: it starts empty again.
    expect(ledger.get('fan-1')).toEqual(emptyTwin());
    expect(transaction(ledger, () => {})).toEqual([]);
  });

  it('remove deletes the twin and forgets what it owed', () => {
    const ledger = new TwinLedger(new TwinStore(db), { reportRefreshMs: 60_000 });
    transaction(ledger, () => ledger.put('pump-1', twin(20, 1)));
    const entries = transaction(ledger, () => {
      ledger.put('pump-1', twin(21, 2));
      ledger.report(pump);
      ledger.remove('pump-1');
    });
    expect(entries).toEqual([]);
    expect(ledger.has('pump-1')).toBe(false);
    expect(new TwinStore(db).loadAll().twins.size).toBe(0);
  });

  it('sends a chatty device\'s changes upstream at most once per interval, saving every one', () => {
    let clock = 10_000;
    const scheduled: number[] = [];
    const ledger = new TwinLedger(new TwinStore(db), {
      reportRefreshMs: 60_000, upstreamIntervalMs: 500, now: () => clock, scheduleRelease: (ms) => scheduled.push(ms),
    });
    const change = (temperature: number, version: number) =>
      transaction(ledger, () => { ledger.put('pump-1', twin(temperature, version)); ledger.reportChange(pump); });
    // The first change after a quiet spell goes at once.
    expect(change(20, 1).map((e) => e.body.twin.version)).toEqual([1]);
    // Changes inside the interval are saved (what a PUBACK promises) but wait; one release is asked for.
    clock += 100;
    expect(change(21, 2)).toEqual([]);
    clock += 100;
    expect(change(22, 3)).toEqual([]);
    expect(scheduled).toEqual([400]);
    expect(ledger.deferredCount).toBe(1);
    expect(new TwinStore(db).loadAll().twins.get('pump-1')).toMatchObject({ reported: { temperature: 22 }, version: 3 });
    // A release before the interval has passed sends nothing and says how long is left.
    let next: number | null = null;
    expect(transaction(ledger, () => { next = ledger.releaseDeferred(devices); })).toEqual([]);
    expect(next).toBe(300);
    // Once it has passed, one entry carries the newest state.
    clock += 300;
    const released = transaction(ledger, () => { next = ledger.releaseDeferred(devices); });
    expect(released.map((e) => [e.key, e.body.twin.version, e.body.twin.reported])).toEqual([['pump-1', 3, { temperature: 22 }]]);
    expect(next).toBeNull();
    expect(ledger.deferredCount).toBe(0);
  });

  it('releaseAll sends every deferred change at once; an on/offline report takes a deferred change along', () => {
    let clock = 10_000;
    const ledger = new TwinLedger(new TwinStore(db), { reportRefreshMs: 60_000, upstreamIntervalMs: 1_000, now: () => clock });
    transaction(ledger, () => {
      for (const [name, device] of [['pump-1', pump], ['fan-1', fan]] as const) { ledger.put(name, twin(20, 1)); ledger.reportChange(device); }
    });
    clock += 10;
    const entries = transaction(ledger, () => {
      ledger.put('pump-1', twin(30, 2)); ledger.reportChange(pump);
      ledger.put('fan-1', twin(31, 2)); ledger.reportChange(fan);
    });
    expect(entries).toEqual([]);
    // fan-1 goes offline: its status report carries the deferred change too.
    expect(transaction(ledger, () => ledger.report(fan)).map((e) => [e.key, e.body.twin.version])).toEqual([['fan-1', 2]]);
    expect(ledger.deferredCount).toBe(1);
    expect(transaction(ledger, () => ledger.releaseAll(devices)).map((e) => [e.key, e.body.twin.version])).toEqual([['pump-1', 2]]);
    expect(ledger.deferredCount).toBe(0);
  });

  it('a rolled-back release of held-back changes is released again', () => {
    let clock = 10_000;
    const scheduled: number[] = [];
    const ledger = new TwinLedger(new TwinStore(db), {
      reportRefreshMs: 60_000, upstreamIntervalMs: 500, now: () => clock, scheduleRelease: (ms) => scheduled.push(ms),
    });
    transaction(ledger, () => { ledger.put('pump-1', twin(20, 1)); ledger.reportChange(pump); });
    clock += 100;
    transaction(ledger, () => { ledger.put('pump-1', twin(21, 2)); ledger.reportChange(pump); });
    clock += 400;
    // The release's transaction fails after the ledger handed its entry on.
    expect(() => db.transaction(() => {
      ledger.releaseDeferred(devices);
      ledger.writePending(devices, () => {});
      throw new Error('disk full');
    })()).toThrow('disk full');
    ledger.rollback(devices.keys());
    expect(ledger.deferredCount).toBe(1);
    expect(scheduled.at(-1)).toBe(0);
    const again = transaction(ledger, () => ledger.releaseDeferred(devices));
    expect(again.map((e) => [e.key, e.body.twin.version])).toEqual([['pump-1', 2]]);
  });
});
