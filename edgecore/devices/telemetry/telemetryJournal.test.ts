import Database from 'better-sqlite3';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../../protocol/index.js';
import { hashPassword } from '../broker/deviceCredentials.js';
import { HubTestKit, makeDevice, waitFor } from '../../../test/helpers/devices/deviceHubFixtures.js';

/**
 * Acked telemetry is on disk at its PUBACK: each transaction's samples are journaled in one
 * row until their batch is in the outbox, and an unclean stop's leftovers go upstream at the
 * next start. Real hub, real SQLite file (read by a second connection), real MQTT clients.
 */

let kit: HubTestKit;
let hash: string;
beforeAll(async () => { hash = await hashPassword('secret'); });
beforeEach(() => { kit = new HubTestKit(); });
afterEach(async () => { await kit.cleanup(); });

const sample = (value: number) => JSON.stringify({ values: { temperature: value } });
const asDevice = (name: string) => ({ clientId: name, username: name, password: 'secret' });

/** Samples per journal row, as another process would find them in the file now. */
function journal(path: string): string[][] {
  const reader = new Database(path, { readonly: true });
  try {
    return reader.prepare<[], { body: string }>('SELECT body FROM device_telemetry_journal ORDER BY seq').all()
      .map((row) => (JSON.parse(row.body) as [string, { values: { temperature: number } }[]][])
        .flatMap(([device, samples]) => samples.map((s) => `${device}:${s.values.temperature}`)));
  } finally {
    reader.close();
  }
}

describe('telemetry journal', () => {
  it('holds an acked sample until its batch is upstream, then lets it go in the same commit', async () => {
    const { hub, url } = await kit.startHub({ telemetryBatch: { maxSamples: 2, maxDelayMs: 60_000 } });
    hub.setDevices(['a', 'b'].map((name) => makeDevice(name, { credentialHash: hash })));
    const a = (await kit.connectClient(url, asDevice('a'))).client;
    const b = (await kit.connectClient(url, asDevice('b'))).client;

    await b.publishAsync(deviceTopics('b').telemetry, sample(1), { qos: 1 });
    // Acked: on disk, though no batch has gone upstream yet.
    expect(journal(kit.dbPath)).toEqual([['b:1']]);
    expect(kit.telemetry('b')).toEqual([]);

    // a's batch fills and goes upstream; b's sample still waits, so its row stays.
    await a.publishAsync(deviceTopics('a').telemetry, JSON.stringify({ samples: [{ values: { temperature: 2 } }, { values: { temperature: 3 } }] }), { qos: 1 });
    await waitFor(() => kit.telemetry('a').length === 1, 'a upstream');
    expect(journal(kit.dbPath).flat()).toContain('b:1');

    await b.publishAsync(deviceTopics('b').telemetry, sample(4), { qos: 1 });
    await waitFor(() => kit.telemetry('b').length === 1, 'b upstream');
    expect(kit.telemetry('b')[0]!.samples.map((s) => s.values.temperature)).toEqual([1, 4]);
    expect(journal(kit.dbPath)).toEqual([]);
  });

  it('sends what an unclean stop left upstream at the next start, before taking messages; drops a row it cannot read', async () => {
    const first = await kit.startHub({});
    await kit.stopHub(first.hub);
    // What a kill -9 leaves: acked samples of two transactions that never reached a batch's outbox entry, and a torn row.
    const writer = new Database(kit.dbPath);
    const insert = writer.prepare('INSERT INTO device_telemetry_journal (seq, body) VALUES (?, ?)');
    insert.run(7, JSON.stringify([['a', [{ t: '2026-11-22T10:00:00.000Z', values: { temperature: 1 } }]], ['b', [{ t: '2026-11-22T10:00:00.000Z', values: { temperature: 2 } }]]]));
    insert.run(8, '[["a", [{"t": 5}]]');
    insert.run(9, JSON.stringify([['a', [{ t: '2026-11-22T10:00:01.000Z', values: { temperature: 3 } }]]]));
    writer.close();
    const warnings: string[] = [];
    const logger = { warn: (_obj: object, msg: string) => { warnings.push(msg); }, info: () => undefined, error: () => undefined, debug: () => undefined };
    const second = await kit.startHub({ telemetryBatch: { maxSamples: 1, maxDelayMs: 60_000 }, logger });
    // One sample per entry (maxSamples 1), in order per device.
    expect(kit.telemetry('a').map((body) => body.samples.map((s) => s.values.temperature))).toEqual([[1], [3]]);
    expect(kit.telemetry('b').map((body) => body.samples.map((s) => s.values.temperature))).toEqual([[2]]);
    expect(journal(kit.dbPath)).toEqual([]);
    expect(warnings).toContain('unreadable telemetry journal row dropped');
    // New telemetry journals after the leftovers, and goes out with its own batch.
    second.hub.setDevices([makeDevice('a', { credentialHash: hash })]);
    const a = (await kit.connectClient(second.url, asDevice('a'))).client;
    await a.publishAsync(deviceTopics('a').telemetry, sample(5), { qos: 1 });
    await waitFor(() => kit.telemetry('a').length === 3, 'the new sample upstream');
    expect(journal(kit.dbPath)).toEqual([]);
  });

  it('a clean stop sends the waiting batches and leaves the journal empty', async () => {
    const { hub, url } = await kit.startHub({ telemetryBatch: { maxSamples: 100, maxDelayMs: 60_000 } });
    hub.setDevices([makeDevice('a', { credentialHash: hash })]);
    const a = (await kit.connectClient(url, asDevice('a'))).client;
    for (const value of [1, 2, 3]) await a.publishAsync(deviceTopics('a').telemetry, sample(value), { qos: 1 });
    expect(journal(kit.dbPath).flat()).toEqual(['a:1', 'a:2', 'a:3']);
    await a.endAsync();
    await kit.stopHub(hub);
    expect(kit.telemetry('a').flatMap((body) => body.samples.map((s) => s.values.temperature))).toEqual([1, 2, 3]);
    expect(journal(kit.dbPath)).toEqual([]);
  });
});
