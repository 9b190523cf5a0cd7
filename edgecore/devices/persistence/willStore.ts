import type Database from 'better-sqlite3';
import { encodePacket, readStoredPacket, type PersistedPacket, type StoredPayload, type UnreadableSink } from './packetCodec.js';
import { pagedRows } from './paging.js';
import type { Db } from './schema.js';

interface WillRow {
  client_id: string;
  broker_id: string | null;
  packet: string;
  payload: StoredPayload;
}

/** Will messages of connected clients, with the id of the broker the client is connected to. */
export class WillStore {
  private readonly upsert: Database.Statement<[string, string | null, string, StoredPayload]>;
  private readonly select: Database.Statement<[string], WillRow>;
  private readonly remove: Database.Statement<[string]>;
  private readonly selectFirstPage: Database.Statement<[number], WillRow>;
  private readonly selectPage: Database.Statement<[string, number], WillRow>;

  constructor(db: Db, private readonly pageSize: number, private readonly unreadable: UnreadableSink) {
    this.upsert = db.prepare(
      `INSERT INTO mqtt_wills (client_id, broker_id, packet, payload) VALUES (?, ?, ?, ?)
       ON CONFLICT(client_id) DO UPDATE SET broker_id = excluded.broker_id, packet = excluded.packet,
         payload = excluded.payload`);
    this.select = db.prepare('SELECT client_id, broker_id, packet, payload FROM mqtt_wills WHERE client_id = ?');
    this.remove = db.prepare('DELETE FROM mqtt_wills WHERE client_id = ?');
    this.selectFirstPage = db.prepare(
      'SELECT client_id, broker_id, packet, payload FROM mqtt_wills ORDER BY client_id LIMIT ?');
    this.selectPage = db.prepare(
      'SELECT client_id, broker_id, packet, payload FROM mqtt_wills WHERE client_id > ? ORDER BY client_id LIMIT ?');
  }

  put(clientId: string, will: PersistedPacket): void {
    const encoded = encodePacket(will);
    this.upsert.run(clientId, typeof will.brokerId === 'string' ? will.brokerId : null, encoded.json, encoded.payload);
  }

  get(clientId: string): PersistedPacket | undefined {
    const row = this.select.get(clientId);
    return row === undefined ? undefined : this.read(row) ?? undefined;
  }

  /** Removes the client's will and returns it. */
  delete(clientId: string): PersistedPacket | undefined {
    const will = this.get(clientId);
    if (will !== undefined) this.remove.run(clientId);
    return will;
  }

  /** Wills whose broker is not among `liveBrokers` (keyed by broker id), in client id order. */
  *orphaned(liveBrokers: Readonly<Record<string, unknown>>, isOpen: () => boolean): Generator<PersistedPacket, void, undefined> {
    const rows = pagedRows<WillRow>(
      (last) => (last === undefined
        ? this.selectFirstPage.all(this.pageSize)
        : this.selectPage.all(last.client_id, this.pageSize)),
      this.pageSize,
      isOpen,
    );
    for (const row of rows) {
      // aedes maps live broker ids to last-seen times; own keys only, so a broker id such as
      // "constructor" is not taken for alive through the prototype.
      const alive = row.broker_id !== null && Object.prototype.hasOwnProperty.call(liveBrokers, row.broker_id)
        && Boolean(liveBrokers[row.broker_id]);
      if (alive) continue;
      const will = this.read(row);
      if (will !== null) yield will;
    }
  }

  /** A will that cannot be read is dropped: there is nothing left to publish. */
  private read(row: WillRow): PersistedPacket | null {
    const will = readStoredPacket(row.packet, row.payload, this.unreadable, { table: 'mqtt_wills', key: row.client_id });
    if (will === null) this.remove.run(row.client_id);
    return will;
  }
}
