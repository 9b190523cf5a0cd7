import type Database from 'better-sqlite3';
import { copyAsQueuedPacket, encodePacket, readStoredPacket, type PersistedPacket, type StoredPayload, type UnreadableSink } from './packetCodec.js';
import type { Db } from './schema.js';

/**
 * QoS 2 packets received from clients, held between PUBLISH and PUBREL so a retransmitted
 * PUBLISH is recognised and not delivered twice.
 */
export class IncomingStore {
  private readonly upsert: Database.Statement<[string, number, string, StoredPayload]>;
  private readonly select: Database.Statement<[string, number], { packet: string; payload: StoredPayload }>;
  private readonly remove: Database.Statement<[string, number]>;
  private readonly removeClient: Database.Statement<[string]>;

  constructor(db: Db, private readonly unreadable: UnreadableSink) {
    this.upsert = db.prepare(
      `INSERT INTO mqtt_incoming (client_id, message_id, packet, payload) VALUES (?, ?, ?, ?)
       ON CONFLICT(client_id, message_id) DO UPDATE SET packet = excluded.packet, payload = excluded.payload`);
    this.select = db.prepare('SELECT packet, payload FROM mqtt_incoming WHERE client_id = ? AND message_id = ?');
    this.remove = db.prepare('DELETE FROM mqtt_incoming WHERE client_id = ? AND message_id = ?');
    this.removeClient = db.prepare('DELETE FROM mqtt_incoming WHERE client_id = ?');
  }

  store(clientId: string, packet: PersistedPacket): void {
    const messageId = requireMessageId(packet);
    const copy = copyAsQueuedPacket(packet);
    copy.messageId = messageId;
    const encoded = encodePacket(copy);
    this.upsert.run(clientId, messageId, encoded.json, encoded.payload);
  }

  /** The stored packet with the same messageId; throws when there is none. */
  get(clientId: string, packet: PersistedPacket): PersistedPacket {
    const messageId = requireMessageId(packet);
    const row = this.select.get(clientId, messageId);
    if (row === undefined) throw new Error('no such packet');
    const stored = readStoredPacket(row.packet, row.payload, this.unreadable, { table: 'mqtt_incoming', key: `${clientId} message ${messageId}` });
    if (stored !== null) return stored;
    // Answered as a packet that is not there (the client's PUBREL is then completed without a delivery).
    this.remove.run(clientId, messageId);
    throw new Error('no such packet');
  }

  /** Deletes the stored packet with the same messageId; throws when there is none. */
  delete(clientId: string, packet: PersistedPacket): void {
    if (this.remove.run(clientId, requireMessageId(packet)).changes === 0) throw new Error('no such packet');
  }

  /** Forgets every stored packet of the client (its session is discarded, [MQTT-3.1.2-6]). */
  clean(clientId: string): void {
    this.removeClient.run(clientId);
  }
}

function requireMessageId(packet: PersistedPacket): number {
  const messageId = packet.messageId;
  if (typeof messageId !== 'number') throw new Error('no such packet: it has no messageId');
  return messageId;
}
