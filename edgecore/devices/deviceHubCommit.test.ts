import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../protocol/index.js';
import { MetaStore } from '../meta/metaStore.js';
import { hashPassword } from './broker/deviceCredentials.js';
import type { DeviceHubOptions } from './deviceHub.js';
import { HubTestKit, makeDevice, nextMessage, waitFor } from '../../test/helpers/devices/deviceHubFixtures.js';

/**
 * The durability contract of the hub's group commit: a QoS 1 PUBACK goes out only after the
 * report's twin and its outbox entry are committed, and a report whose commit fails is not
 * acknowledged and changes nothing.
 */

let kit: HubTestKit;
let pumpHash: string;
beforeAll(async () => { pumpHash = await hashPassword('pump-secret'); });
beforeEach(() => { kit = new HubTestKit(); });
const metas: MetaStore[] = [];
// Hubs first: they write through the MetaStore's connection.
afterEach(async () => {
  await kit.cleanup();
  for (const meta of metas.splice(0)) meta.close();
});

/** Hub options wiring it as edgecore does: its upstream entries go to `meta`'s outbox in its transactions. */
function onOutbox(meta: MetaStore): Pick<DeviceHubOptions, 'db' | 'upstream'> {
  return { db: meta.database, upstream: (entries) => meta.enqueueMany(entries) };
}

/** A real edge database (MetaStore) in the kit's dir, closed after the test. */
function edgeDb(): { meta: MetaStore; path: string } {
  const path = join(kit.dir, 'edge.db');
  const meta = MetaStore.open(path);
  metas.push(meta);
  return { meta, path };
}

const names = Array.from({ length: 8 }, (_, i) => `pump-${i + 1}`);
const asDevice = (name: string) => ({ clientId: name, username: name, password: 'pump-secret' });

/** Makes every later twin write fail, as a full or failing disk would; returns the undo. */
function sabotageTwinWrites(path: string): () => void {
  const saboteur = new Database(path);
  for (const op of ['INSERT', 'UPDATE']) {
    saboteur.exec(`CREATE TRIGGER no_twin_${op.toLowerCase()} BEFORE ${op} ON device_twins BEGIN SELECT RAISE(ABORT, 'injected write failure'); END`);
  }
  return () => {
    saboteur.exec('DROP TRIGGER no_twin_insert; DROP TRIGGER no_twin_update');
    saboteur.close();
  };
}

/** What another process would find in the file right now. */
function onDisk(path: string): { twins: Record<string, unknown>; outbox: Record<string, unknown> } {
  const reader = new Database(path, { readonly: true });
  try {
    const twins = reader.prepare<[], { device: string; reported: string }>('SELECT device, reported FROM device_twins').all();
    const outbox = reader.prepare<[], { key: string; body: string }>("SELECT key, body FROM outbox WHERE kind = 'twinReported'").all();
    return {
      twins: Object.fromEntries(twins.map((r) => [r.device, JSON.parse(r.reported) as unknown])),
      outbox: Object.fromEntries(outbox.map((r) => [r.key, (JSON.parse(r.body) as { twin: { reported: unknown } }).twin.reported])),
    };
  } finally {
    reader.close();
  }
}

describe('DeviceHub group commit', () => {
  it('shares the edge database: when a PUBACK arrives, the twin and (interval 0) its outbox entry are on disk', async () => {
    const { meta, path } = edgeDb();
    const commits: boolean[] = [];
    const { hub, url } = await kit.startHub({ ...onOutbox(meta), onUpstreamCommit: (ok) => commits.push(ok), twinUpstreamIntervalMs: 0 });
    hub.setDevices(names.map((name) => makeDevice(name, { credentialHash: pumpHash })));
    const clients = await Promise.all(names.map(async (name) => (await kit.connectClient(url, asDevice(name))).client));
    // Every device publishes at once; each checks the file the moment its own PUBACK is in.
    const seen = await Promise.all(clients.map(async (client, i) => {
      await client.publishAsync(deviceTopics(names[i]!).reported, JSON.stringify({ properties: { temperature: 20 + i } }), { qos: 1 });
      const disk = onDisk(path);
      return [disk.twins[names[i]!], disk.outbox[names[i]!]];
    }));
    expect(seen).toEqual(names.map((_, i) => [{ temperature: 20 + i }, { temperature: 20 + i }]));
    expect(commits.every((ok) => ok)).toBe(true);
    await kit.stopHub(hub);
  });

  it('with an upstream interval a PUBACK still means the twin is on disk; the outbox gets the newest state after the interval', async () => {
    const { meta, path } = edgeDb();
    // Long enough that three round trips fit inside it on a busy machine.
    const { hub, url } = await kit.startHub({ ...onOutbox(meta), twinUpstreamIntervalMs: 2_000 });
    const name = names[0]!;
    hub.setDevices([makeDevice(name, { credentialHash: pumpHash })]);
    const { client } = await kit.connectClient(url, asDevice(name));
    // setDevices just sent this device upstream, so its reports now fall inside the interval.
    for (const temperature of [21, 22, 23]) {
      await client.publishAsync(deviceTopics(name).reported, JSON.stringify({ properties: { temperature } }), { qos: 1 });
      expect(onDisk(path).twins[name]).toEqual({ temperature });
    }
    expect(onDisk(path).outbox[name]).not.toEqual({ temperature: 23 });
    await waitFor(() => JSON.stringify(onDisk(path).outbox[name]) === JSON.stringify({ temperature: 23 }), 'the newest state in the outbox');
    await kit.stopHub(hub);
  });

  it('a report whose commit fails gets no PUBACK, changes nothing, and is taken when sent again', async () => {
    const { hub, url } = await kit.startHub();
    hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash })]);
    const first = await kit.connectClient(url, asDevice('pump-1'));
    await first.client.publishAsync(deviceTopics('pump-1').reported, JSON.stringify({ properties: { temperature: 20 } }), { qos: 1 });
    await waitFor(() => kit.twinReports('pump-1').some((b) => b.twin.version === 1), 'first report upstream');

    const repair = sabotageTwinWrites(kit.dbPath);
    let acked = false;
    const closed = new Promise<void>((resolve) => first.client.once('close', () => resolve()));
    first.client.publish(deviceTopics('pump-1').reported, JSON.stringify({ properties: { temperature: 99 } }), { qos: 1 }, (err) => { if (!err) acked = true; });
    await closed; // the hub refused the publish after the failed commit: aedes closed the connection
    expect(acked).toBe(false);
    expect(hub.statusSnapshot().devices[0]).toMatchObject({ reported: { temperature: 20 }, reportedVersion: 1 });
    const afterFailure = hub.statusSnapshot().commits;
    expect(afterFailure.rollbacks).toBeGreaterThanOrEqual(1);
    expect(kit.twinReports('pump-1').some((b) => b.twin.reported.temperature === 99)).toBe(false);

    repair();
    const again = await kit.connectClient(url, asDevice('pump-1'));
    await again.client.publishAsync(deviceTopics('pump-1').reported, JSON.stringify({ properties: { temperature: 99 } }), { qos: 1 });
    expect(hub.statusSnapshot().devices[0]).toMatchObject({ reported: { temperature: 99 }, reportedVersion: 2 });
    // The resent report was committed: at least its own transaction and item counted, no new rollback.
    const afterResend = hub.statusSnapshot().commits;
    expect(afterResend.transactions).toBeGreaterThan(afterFailure.transactions);
    expect(afterResend.items).toBeGreaterThan(afterFailure.items);
    expect(afterResend.rollbacks).toBe(afterFailure.rollbacks);
    await waitFor(() => kit.twinReports('pump-1').some((b) => b.twin.reported.temperature === 99), 'the resent report upstream');
  });

  it('an offline change whose commit fails is retried until it is recorded, with its retained status', async () => {
    const { hub, url } = await kit.startHub();
    const mapperHash = await hashPassword('mapper-secret');
    hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash })]);
    hub.addMapperCredential('virtual-mapper', mapperHash, 'virtual');
    const device = await kit.connectClient(url, asDevice('pump-1'));
    await waitFor(() => hub.statusSnapshot().devices[0]!.online, 'pump-1 online');

    const repair = sabotageTwinWrites(kit.dbPath);
    const rollbacks = hub.statusSnapshot().commits.rollbacks;
    await device.client.endAsync();
    // The offline change was rolled back: the twin still says what was last committed.
    await waitFor(() => hub.statusSnapshot().commits.rollbacks > rollbacks, 'the offline change rolled back');
    expect(hub.statusSnapshot().devices[0]!.online).toBe(true);
    // Retries keep failing while the disk does (a second apart), and nothing is published.
    await waitFor(() => hub.statusSnapshot().commits.rollbacks > rollbacks + 1, 'a retry rolled back too');
    expect(hub.statusSnapshot().devices[0]!.online).toBe(true);

    repair();
    await waitFor(() => !hub.statusSnapshot().devices[0]!.online, 'the retry records pump-1 offline');
    const row = new Database(kit.dbPath, { readonly: true });
    try {
      expect(row.prepare<[], { online: number }>("SELECT online FROM device_twins WHERE device = 'pump-1'").get()!.online).toBe(0);
    } finally {
      row.close();
    }
    expect(kit.twinReports('pump-1').at(-1)!.online).toBe(false);
    // A mapper connection does not make the device online; it reads the retained status.
    const mapper = await kit.connectClient(url, { clientId: 'mapper', username: 'virtual-mapper', password: 'mapper-secret' });
    await mapper.client.subscribeAsync(deviceTopics('pump-1').status, { qos: 1 });
    const status = await nextMessage(mapper.received, deviceTopics('pump-1').status);
    expect(status).toMatchObject({ json: { online: false }, retain: true });
  });

  it('acked telemetry whose batch cannot be written to the outbox is kept and written once the disk works again', async () => {
    const { meta, path } = edgeDb();
    const telemetryRows = () => meta.database.prepare<[], { body: string }>("SELECT body FROM outbox WHERE kind = 'telemetry'").all()
      .map((r) => JSON.parse(r.body) as { device: string; samples: { values: Record<string, unknown> }[] });
    const { hub, url } = await kit.startHub({ ...onOutbox(meta), telemetryBatch: { maxSamples: 100, maxDelayMs: 300 } });
    hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash })]);
    const { client } = await kit.connectClient(url, asDevice('pump-1'));
    await client.publishAsync(deviceTopics('pump-1').telemetry, JSON.stringify({ samples: [{ values: { temperature: 21.5 } }] }), { qos: 1 });
    // Acked: the sample waits in its batch. The outbox fails before the batch is written.
    const saboteur = new Database(path);
    saboteur.exec("CREATE TRIGGER no_outbox_insert BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'injected write failure'); END");
    const rollbacks = hub.statusSnapshot().commits.rollbacks;
    await waitFor(() => hub.statusSnapshot().commits.rollbacks > rollbacks + 1, 'the batch and a retry rolled back');
    expect(telemetryRows()).toEqual([]);

    saboteur.exec('DROP TRIGGER no_outbox_insert');
    saboteur.close();
    await waitFor(() => telemetryRows().length > 0, 'the kept batch in the outbox');
    expect(telemetryRows()).toMatchObject([{ device: 'pump-1', samples: [{ values: { temperature: 21.5 } }] }]);
    await kit.stopHub(hub);
    expect(telemetryRows()).toHaveLength(1);
  });

  it('a device list whose commit fails does not throw; it is recorded once the disk works again', async () => {
    const warnings: string[] = [];
    const { hub, url } = await kit.startHub({ logger: { info: () => {}, warn: (_obj, msg) => { warnings.push(msg ?? ''); } } });
    hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash })]);
    const twinRows = () => {
      const reader = new Database(kit.dbPath, { readonly: true });
      try {
        return reader.prepare<[], { device: string }>('SELECT device FROM device_twins ORDER BY device').all().map((r) => r.device);
      } finally {
        reader.close();
      }
    };
    expect(twinRows()).toEqual(['pump-1']);

    const repair = sabotageTwinWrites(kit.dbPath);
    const rollbacks = hub.statusSnapshot().commits.rollbacks;
    expect(() => hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash }), makeDevice('pump-2', { credentialHash: pumpHash })])).not.toThrow();
    expect(hub.statusSnapshot().commits.rollbacks).toBe(rollbacks + 1);
    expect(warnings).toContain('recording the device list failed; trying again');
    expect(twinRows()).toEqual(['pump-1']);
    expect(kit.twinReports('pump-2')).toEqual([]);
    // The hub works on with the new list.
    expect(hub.statusSnapshot().devices.map((d) => d.name)).toEqual(['pump-1', 'pump-2']);

    repair();
    // The retry commits the list: the new device's (empty) twin goes upstream, so the cloud sees it.
    await waitFor(() => kit.twinReports('pump-2').length > 0, 'pump-2 recorded by the retry');
    const { client } = await kit.connectClient(url, asDevice('pump-2'));
    await client.publishAsync(deviceTopics('pump-2').reported, JSON.stringify({ properties: { temperature: 30 } }), { qos: 1 });
    expect(hub.statusSnapshot().devices[1]).toMatchObject({ name: 'pump-2', reported: { temperature: 30 }, reportedVersion: 1 });
    expect(twinRows()).toEqual(['pump-1', 'pump-2']);
  });

  it('a telemetry message whose commit fails is not batched: resent, its samples reach the outbox once', async () => {
    const { meta, path } = edgeDb();
    const samples = () => meta.database.prepare<[], { body: string }>("SELECT body FROM outbox WHERE kind = 'telemetry'").all()
      .flatMap((r) => (JSON.parse(r.body) as { samples: { t: string; values: Record<string, unknown> }[] }).samples);
    // reportRefreshMs 0: every message refreshes the twin's row, so a broken twin table fails telemetry too.
    const { hub, url } = await kit.startHub({ ...onOutbox(meta), reportRefreshMs: 0, telemetryBatch: { maxSamples: 100, maxDelayMs: 300 } });
    hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash })]);
    const first = await kit.connectClient(url, asDevice('pump-1'));
    const repair = sabotageTwinWrites(path);
    const message = JSON.stringify({ samples: [{ t: '2026-11-22T10:00:00.000Z', values: { temperature: 21.5 } }] });
    let acked = false;
    const closed = new Promise<void>((resolve) => first.client.once('close', () => resolve()));
    first.client.publish(deviceTopics('pump-1').telemetry, message, { qos: 1 }, (err) => { if (!err) acked = true; });
    await closed;
    expect(acked).toBe(false);
    repair();

    const again = await kit.connectClient(url, asDevice('pump-1'));
    await again.client.publishAsync(deviceTopics('pump-1').telemetry, message, { qos: 1 });
    await waitFor(() => samples().length > 0, 'the batch in the outbox');
    await kit.stopHub(hub);
    expect(samples()).toEqual([{ t: '2026-11-22T10:00:00.000Z', values: { temperature: 21.5 } }]);
  });

  it('a full telemetry batch is written in a commit of its own, also when nothing else comes', async () => {
    const { meta, path } = edgeDb();
    const { hub, url } = await kit.startHub({ ...onOutbox(meta), telemetryBatch: { maxSamples: 3, maxDelayMs: 60_000 } });
    hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash })]);
    const { client } = await kit.connectClient(url, asDevice('pump-1'));
    const values = [1, 2, 3].map((count) => ({ values: { count } }));
    await client.publishAsync(deviceTopics('pump-1').telemetry, JSON.stringify({ samples: values }), { qos: 1 });
    const rows = () => meta.database.prepare<[], { body: string }>("SELECT body FROM outbox WHERE kind = 'telemetry'").all();
    await waitFor(() => rows().length === 1, 'the full batch in the outbox');
    expect((JSON.parse(rows()[0]!.body) as { samples: unknown[] }).samples).toMatchObject(values);
    await kit.stopHub(hub);
  });

  it('a retained desired the broker cannot store is published again once it can: a device subscribing later finds it', async () => {
    const { hub, url } = await kit.startHub();
    hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash })]);
    const saboteur = new Database(kit.dbPath);
    for (const op of ['INSERT', 'UPDATE']) {
      saboteur.exec(`CREATE TRIGGER no_retained_${op.toLowerCase()} BEFORE ${op} ON mqtt_retained BEGIN SELECT RAISE(ABORT, 'injected write failure'); END`);
    }
    const retainedDesired = () => saboteur.prepare<[string], { n: number }>('SELECT count(*) AS n FROM mqtt_retained WHERE topic = ?').get(deviceTopics('pump-1').desired)!.n;
    try {
      hub.setDevices([makeDevice('pump-1', { credentialHash: pumpHash, desired: { setpoint: 22 }, desiredVersion: 1 })]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(retainedDesired()).toBe(0);
      saboteur.exec('DROP TRIGGER no_retained_insert; DROP TRIGGER no_retained_update');
      await waitFor(() => retainedDesired() === 1, 'the retained desired stored by the retry');
    } finally {
      saboteur.close();
    }
    const { client, received } = await kit.connectClient(url, asDevice('pump-1'));
    await client.subscribeAsync(deviceTopics('pump-1').desired, { qos: 1 });
    const desired = await nextMessage(received, deviceTopics('pump-1').desired);
    expect(desired).toMatchObject({ json: { properties: { setpoint: 22 }, version: 1 }, retain: true });
  });
});
