import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openMqttDatabase, type Db } from './persistence/schema.js';
import { makeDevice } from './testing/hubFixtures.js';
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
    const ledger = new TwinLedger(new TwinStore(db), 60_000, () => clock);
    const entries = transaction(ledger, () => {
      for (let i = 1; i <= 3; i++) {
        ledger.put('pump-1', twin(20 + i, i));
        ledger.report(pump);
      }
      ledger.ensure('fan-1');
    });
    expect(entries.map((e) => [e.key, e.body.twin.version, e.body.twin.reported])).toEqual([['pump-1', 3, { temperature: 23 }]]);
    expect(new TwinLedger(new TwinStore(db), 60_000).get('pump-1')).toMatchObject({ reported: { temperature: 23 }, version: 3 });
    expect(new TwinLedger(new TwinStore(db), 60_000).names().sort()).toEqual(['fan-1', 'pump-1']);
    // A later transaction with nothing to do writes and sends nothing.
    clock += 1;
    expect(transaction(ledger, () => {})).toEqual([]);
  });

  it('touch moves lastSeen in memory and goes upstream only once reportRefreshMs has passed', () => {
    let clock = 1_000;
    const ledger = new TwinLedger(new TwinStore(db), 60_000, () => clock);
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
    const ledger = new TwinLedger(new TwinStore(db), 60_000);
    transaction(ledger, () => ledger.ensure('pump-1'));
    expect(ledger.needsReport(pump)).toBe(true);
    transaction(ledger, () => ledger.report(pump));
    expect(ledger.needsReport(pump)).toBe(false);
    expect(ledger.needsReport(makeDevice('pump-1', { generation: 2 }))).toBe(true);
    ledger.rollback(devices.keys());
    expect(ledger.needsReport(pump)).toBe(true);
  });

  it('rollback puts the twins back to what is committed', () => {
    const ledger = new TwinLedger(new TwinStore(db), 60_000);
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
    const ledger = new TwinLedger(new TwinStore(db), 60_000);
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
});
