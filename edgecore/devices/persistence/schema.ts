import type Database from 'better-sqlite3';
import { openEdgeSqlite } from '../../sqliteFile.js';

/**
 * Tables of the MQTT broker's persistence. All are prefixed `mqtt_` so they can live in the
 * edge's own database next to its other tables. The schema version is kept in `mqtt_meta`, not
 * in `PRAGMA user_version`, which belongs to whoever owns the database file.
 */

export type Db = Database.Database;

export const MQTT_SCHEMA_VERSION = 1;

const MIGRATIONS: readonly string[] = [
  // v1
  `
  -- One retained message per topic. payload is ANY so a TEXT payload stays TEXT and a BLOB a BLOB.
  CREATE TABLE mqtt_retained (
    topic TEXT PRIMARY KEY,
    packet TEXT NOT NULL,
    payload ANY
  ) STRICT, WITHOUT ROWID;

  -- Subscriptions of persistent sessions (clean: false). The rowid keeps subscription order.
  CREATE TABLE mqtt_subscriptions (
    client_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    qos INTEGER NOT NULL,
    rh INTEGER,
    rap INTEGER,
    nl INTEGER,
    subscription_identifier INTEGER,
    UNIQUE (client_id, topic)
  ) STRICT;
  CREATE INDEX mqtt_subscriptions_topic ON mqtt_subscriptions (topic);

  -- Packets waiting for (or in flight to) a client. AUTOINCREMENT: seq never goes back, which is
  -- what lets a stream take a snapshot as "everything up to the seq seen when it started".
  CREATE TABLE mqtt_outgoing (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL,
    broker_id TEXT,
    broker_counter INTEGER,
    message_id INTEGER,
    packet TEXT NOT NULL,
    payload ANY
  ) STRICT;
  CREATE INDEX mqtt_outgoing_client ON mqtt_outgoing (client_id, seq);
  -- Finding the row a broker update or a client ack is about must not scan the client's queue:
  -- draining a queue of N would cost N² otherwise.
  CREATE INDEX mqtt_outgoing_counter ON mqtt_outgoing (client_id, broker_id, broker_counter, seq);
  CREATE INDEX mqtt_outgoing_message ON mqtt_outgoing (client_id, message_id, seq);

  -- QoS 2 packets received from a client and not yet released (PUBREL).
  CREATE TABLE mqtt_incoming (
    client_id TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    packet TEXT NOT NULL,
    payload ANY,
    PRIMARY KEY (client_id, message_id)
  ) STRICT, WITHOUT ROWID;

  -- Last-will messages of connected clients, published by a broker that finds them orphaned.
  CREATE TABLE mqtt_wills (
    client_id TEXT PRIMARY KEY,
    broker_id TEXT,
    packet TEXT NOT NULL,
    payload ANY
  ) STRICT, WITHOUT ROWID;
  `,
];

/** Creates the mqtt_ tables, or brings them up to date, inside one transaction. */
export function migrateMqttSchema(db: Db): void {
  db.exec('CREATE TABLE IF NOT EXISTS mqtt_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT');
  const read = db.prepare<[], { value: string }>("SELECT value FROM mqtt_meta WHERE key = 'schema_version'");
  const write = db.prepare<[string]>(
    "INSERT INTO mqtt_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  db.transaction(() => {
    const current = Number(read.get()?.value ?? '0');
    if (!Number.isInteger(current) || current > MIGRATIONS.length) {
      throw new Error(`mqtt persistence schema version ${String(read.get()?.value)} is newer than this build knows (${MIGRATIONS.length})`);
    }
    for (let version = current; version < MIGRATIONS.length; version++) db.exec(MIGRATIONS[version]);
    write.run(String(MIGRATIONS.length));
  }).immediate();
}

/**
 * How hard a commit waits for the disk. `full` (the default): a QoS 1 message acked to its
 * publisher survives a power cut, at the price of an fsync per commit (a few ms on an SD card or
 * a virtual disk, so a few hundred persisted operations a second). `normal`: WAL commits survive
 * a crash of the process but the last ones may be lost on power loss, for ~50x the throughput.
 */
export type MqttSyncMode = 'full' | 'normal';

/** Opens (creating if needed) a database file for the broker alone, in WAL mode. */
export function openMqttDatabase(path: string, sync: MqttSyncMode = 'full'): Db {
  // Payloads and will messages can be sensitive: the file is created owner-only.
  return openEdgeSqlite(path, { synchronous: sync === 'full' ? 'FULL' : 'NORMAL' }, (db) => db);
}
