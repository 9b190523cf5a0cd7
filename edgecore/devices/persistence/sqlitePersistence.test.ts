import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PersistedPacket } from './packetCodec.js';
import { createSqlitePersistence, SqlitePersistence, type PersistenceBroker } from './sqlitePersistence.js';

let dir: string;
let dbPath: string;
const open: SqlitePersistence[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mqtt-persistence-'));
  dbPath = join(dir, 'broker.sqlite');
});

afterEach(async () => {
  for (const persistence of open.splice(0)) await persistence.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function start(brokerId = 'broker-a', pageSize?: number): Promise<{ persistence: SqlitePersistence; broker: PersistenceBroker }> {
  const persistence = createSqlitePersistence({ path: dbPath, pageSize });
  open.push(persistence);
  const broker = { id: brokerId, counter: 0 };
  await persistence.setup(broker);
  return { persistence, broker };
}

async function restart(before: SqlitePersistence, brokerId = 'broker-b', pageSize?: number): Promise<SqlitePersistence> {
  await before.destroy();
  return (await start(brokerId, pageSize)).persistence;
}

async function drain<Item = PersistedPacket>(stream: Readable): Promise<Item[]> {
  const items: Item[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

function publish(topic: string, payload: string, extra: Partial<PersistedPacket> = {}): PersistedPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false, ...extra };
}

describe('SqlitePersistence across a restart', () => {
  it('keeps retained messages, subscriptions, queues, QoS 2 state and wills', async () => {
    const { persistence: first } = await start();
    await first.storeRetained(publish('devices/d1/state', 'on', { retain: true, qos: 0 }));
    await first.addSubscriptions({ id: 'sub' }, [
      { topic: 'devices/+/state', qos: 1, rh: 0, rap: false, nl: false, subscriptionIdentifier: 5 },
      { topic: 'devices/d1/log', qos: 0 },
    ]);
    await first.outgoingEnqueueCombi([{ clientId: 'sub' }], publish('devices/d1/state', 'q1', { brokerId: 'broker-a', brokerCounter: 1 }));
    await first.outgoingEnqueueCombi([{ clientId: 'sub' }], publish('devices/d1/state', 'q2', { brokerId: 'broker-a', brokerCounter: 2 }));
    await first.outgoingUpdate({ id: 'sub' }, publish('devices/d1/state', 'q1', { brokerId: 'broker-a', brokerCounter: 1, messageId: 11 }));
    await first.incomingStorePacket({ id: 'pub' }, publish('in/q2', 'x', { qos: 2, messageId: 3 }));
    await first.putWill({ id: 'pub' }, { cmd: 'publish', topic: 'wills/pub', payload: Buffer.from('gone'), qos: 1, retain: false });

    const second = await restart(first);
    expect(await drain(second.createRetainedStream('devices/#'))).toMatchObject([{ topic: 'devices/d1/state', payload: Buffer.from('on') }]);
    expect(await second.subscriptionsByClient({ id: 'sub' })).toStrictEqual([
      { topic: 'devices/+/state', qos: 1, rh: 0, rap: false, nl: false, subscriptionIdentifier: 5 },
      { topic: 'devices/d1/log', qos: 0, rh: undefined, rap: undefined, nl: undefined },
    ]);
    // The routing index is rebuilt from the table: only the QoS 1 subscription routes.
    expect(await second.subscriptionsByTopic('devices/d2/state')).toStrictEqual([
      { clientId: 'sub', topic: 'devices/+/state', qos: 1, rh: 0, rap: false, nl: false },
    ]);
    expect(await second.subscriptionsByTopic('devices/d1/log')).toEqual([]);
    expect(await second.countOffline()).toEqual({ subsCount: 1, clientsCount: 1 });

    const queued = await drain(second.outgoingStream({ id: 'sub' }));
    expect(queued).toMatchObject([
      { payload: Buffer.from('q1'), messageId: 11, brokerId: 'broker-a', brokerCounter: 1 },
      { payload: Buffer.from('q2'), messageId: undefined, brokerCounter: 2 },
    ]);
    expect(await second.outgoingClearMessageId({ id: 'sub' }, { messageId: 11 })).toMatchObject({ payload: Buffer.from('q1') });

    expect(await second.incomingGetPacket({ id: 'pub' }, { messageId: 3 })).toMatchObject({ topic: 'in/q2', qos: 2 });
    expect(await second.getWill({ id: 'pub' })).toMatchObject({ topic: 'wills/pub', brokerId: 'broker-a', clientId: 'pub' });
    // broker-a is not among the live brokers of the new run, so its wills are to be published.
    expect(await drain(second.streamWill({ 'broker-b': Date.now() }))).toHaveLength(1);
    expect(await drain(second.streamWill({ 'broker-a': Date.now() }))).toHaveLength(0);
  });

  it('continues the packet counter of a broker restarted with the same id', async () => {
    const { persistence: first } = await start('fixed-id');
    await first.outgoingEnqueue({ clientId: 'c' }, publish('t', 'old', { brokerId: 'fixed-id', brokerCounter: 41 }));
    await first.destroy();

    const { persistence: second, broker } = await start('fixed-id');
    expect(broker.counter).toBe(41);
    // A new packet numbered by the restarted broker no longer collides with the queued one.
    const fresh = publish('t', 'new', { brokerId: 'fixed-id', brokerCounter: ++broker.counter });
    await second.outgoingEnqueue({ clientId: 'c' }, fresh);
    await second.outgoingUpdate({ id: 'c' }, { ...fresh, messageId: 2 });
    const queued = await drain(second.outgoingStream({ id: 'c' }));
    expect(queued).toMatchObject([{ payload: Buffer.from('old'), messageId: undefined }, { payload: Buffer.from('new'), messageId: 2 }]);

    const { broker: other } = await start('another-id');
    expect(other.counter).toBe(0);
  });
});

describe('SqlitePersistence streams', () => {
  it('streams a queue as it was when the stream was made, page by page, while it is being cleared', async () => {
    const { persistence } = await start('broker-a', 2);
    for (let i = 1; i <= 7; i++) {
      await persistence.outgoingEnqueue({ clientId: 'c' }, publish('t', `m${i}`, { brokerId: 'broker-a', brokerCounter: i }));
      await persistence.outgoingUpdate({ id: 'c' }, publish('t', `m${i}`, { brokerId: 'broker-a', brokerCounter: i, messageId: i }));
    }
    const stream = persistence.outgoingStream({ id: 'c' });
    await persistence.outgoingEnqueue({ clientId: 'c' }, publish('t', 'late', { brokerId: 'broker-a', brokerCounter: 99 }));
    const seen: string[] = [];
    for await (const item of stream) {
      const packet: PersistedPacket = item;
      seen.push(String(packet.payload));
      if (typeof packet.messageId === 'number') await persistence.outgoingClearMessageId({ id: 'c' }, packet);
    }
    expect(seen).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
    expect((await drain(persistence.outgoingStream({ id: 'c' }))).map((p) => String(p.payload))).toEqual(['late']);
  });

  it('yields a retained message once even when several filters match it', async () => {
    const { persistence } = await start('broker-a', 1);
    for (const topic of ['a/b', 'a/c', 'ab', 'b/b', 'ä/ö', 'a']) {
      await persistence.storeRetained(publish(topic, topic, { retain: true }));
    }
    const topics = async (filters: string[]): Promise<string[]> =>
      (await drain(persistence.createRetainedStreamCombi(filters))).map((p) => String(p.topic));
    expect(await topics(['a/#', 'a/+', '+/b'])).toEqual(['a', 'a/b', 'a/c', 'b/b']);
    expect(await topics(['ä/+'])).toEqual(['ä/ö']);
    expect(await topics(['#'])).toEqual(['a', 'a/b', 'a/c', 'ab', 'b/b', 'ä/ö']);
    expect(await topics([])).toEqual([]);
    await persistence.storeRetained(publish('a/b', '', { retain: true }));
    expect(await topics(['a/+'])).toEqual(['a/c']);
  });

  it('lists the clients subscribed to a filter, across pages', async () => {
    const { persistence } = await start('broker-a', 2);
    for (const id of ['c1', 'c2', 'c3', 'c4', 'c5']) await persistence.addSubscriptions({ id }, [{ topic: 'x/#', qos: 0 }]);
    await persistence.removeSubscriptions({ id: 'c2' }, ['x/#']);
    expect(await drain<string>(persistence.getClientList('x/#'))).toEqual(['c1', 'c3', 'c4', 'c5']);
  });
});

describe('SqlitePersistence database handling', () => {
  it('opens its own file in WAL mode, owner-only, and closes it on destroy', async () => {
    const { persistence } = await start();
    expect(statSync(dbPath).mode & 0o777).toBe(0o600);
    const reader = new Database(dbPath, { readonly: true });
    try {
      expect(reader.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      reader.close();
    }
    await persistence.destroy();
    await persistence.destroy();
    await expect(persistence.storeRetained(publish('t', 'x'))).rejects.toThrow(/destroyed/);
    expect(() => persistence.outgoingStream({ id: 'c' })).toThrow(/destroyed/);
  });

  it('shares a database handle without closing it or touching user_version', async () => {
    const db = new Database(dbPath);
    try {
      db.pragma('user_version = 7');
      db.exec('CREATE TABLE edge_things (id TEXT PRIMARY KEY)');
      const persistence = new SqlitePersistence({ db });
      await persistence.setup({ id: 'b', counter: 0 });
      await persistence.storeRetained(publish('t', 'x', { retain: true }));
      await persistence.destroy();
      expect(db.open).toBe(true);
      expect(db.pragma('user_version', { simple: true })).toBe(7);
      const tables = db.prepare<[], { name: string }>(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all();
      expect(tables.map((t) => t.name)).toEqual([
        'edge_things', 'mqtt_incoming', 'mqtt_meta', 'mqtt_outgoing', 'mqtt_retained', 'mqtt_subscriptions', 'mqtt_wills',
      ]);
      // A second start on the same handle finds its tables and data.
      const again = new SqlitePersistence({ db });
      await again.setup({ id: 'b', counter: 0 });
      expect(await drain(again.createRetainedStream('t'))).toHaveLength(1);
      await again.destroy();
    } finally {
      db.close();
    }
  });

  it('refuses a database whose mqtt schema is newer than it knows', () => {
    const db = new Database(dbPath);
    try {
      db.exec("CREATE TABLE mqtt_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT; INSERT INTO mqtt_meta VALUES ('schema_version', '99')");
      expect(() => new SqlitePersistence({ db })).toThrow(/newer/);
    } finally {
      db.close();
    }
  });

  it('clears nothing for an ack without a messageId', async () => {
    const { persistence } = await start();
    await persistence.outgoingEnqueue({ clientId: 'c' }, publish('t', 'unsent', { brokerId: 'broker-a', brokerCounter: 1 }));
    expect(await persistence.outgoingClearMessageId({ id: 'c' }, {})).toBeUndefined();
    expect(await drain(persistence.outgoingStream({ id: 'c' }))).toHaveLength(1);
  });
});

describe('SqlitePersistence session limits (issue 20)', () => {
  it('keeps at most maxQueuedPerClient unsent packets per client, dropping the oldest, never one in flight', async () => {
    const drops: [string, number][] = [];
    const persistence = createSqlitePersistence({ path: dbPath, maxQueuedPerClient: 3, onQueueDrop: (id, n) => drops.push([id, n]) });
    open.push(persistence);
    await persistence.setup({ id: 'b', counter: 0 });
    await persistence.outgoingEnqueueCombi([{ clientId: 'a' }], publish('t', 'q0', { brokerId: 'b', brokerCounter: 0 }));
    await persistence.outgoingUpdate({ id: 'a' }, publish('t', 'q0', { brokerId: 'b', brokerCounter: 0, messageId: 1 })); // in flight
    for (let i = 1; i <= 5; i++) await persistence.outgoingEnqueueCombi([{ clientId: 'a' }, { clientId: 'c' }], publish('t', `q${i}`, { brokerId: 'b', brokerCounter: i }));
    const payloads = async (id: string) => (await drain(persistence.outgoingStream({ id }))).map((p) => String(p.payload));
    expect(await payloads('a')).toEqual(['q0', 'q3', 'q4', 'q5']);
    expect(await payloads('c')).toEqual(['q3', 'q4', 'q5']);
    expect(persistence.queuedDropped).toBe(4);
    expect(drops).toEqual([['a', 1], ['c', 1], ['a', 1], ['c', 1]]);
  });

  it('lists a name\'s sessions oldest first and discards one whole', async () => {
    const { persistence } = await start();
    for (const id of ['pump-1-x', 'pump-1', 'pump-10', 'pump-1-y']) await persistence.addSubscriptions({ id }, [{ topic: 'ef/devices/pump-1/#', qos: 1 }]);
    expect(persistence.sessionsNamed('pump-1')).toEqual(['pump-1-x', 'pump-1', 'pump-1-y']);
    await persistence.outgoingEnqueueCombi([{ clientId: 'pump-1-x' }], publish('ef/devices/pump-1/twin/delta', 'd', { brokerId: 'broker-a', brokerCounter: 1 }));
    await persistence.incomingStorePacket({ id: 'pump-1-x' }, publish('in', 'x', { qos: 2, messageId: 3 }));
    persistence.discardSession('pump-1-x');
    expect(persistence.sessionsNamed('pump-1')).toEqual(['pump-1', 'pump-1-y']);
    expect(await drain(persistence.outgoingStream({ id: 'pump-1-x' }))).toEqual([]);
    expect((await persistence.subscriptionsByTopic('ef/devices/pump-1/twin/delta')).map((s) => s.clientId).sort()).toEqual(['pump-1', 'pump-1-y', 'pump-10']);
  });
});
