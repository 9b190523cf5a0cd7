import type Database from 'better-sqlite3';
import {
  copyAsQueuedPacket, decodeFields, encodeFields, encodePacket, readStoredPacket,
  type PersistedPacket, type StoredPayload, type UnreadableSink,
} from './packetCodec.js';
import { pagedRows } from './paging.js';
import type { Db } from './schema.js';

interface QueuedRow {
  seq: number;
  packet: string;
  payload: StoredPayload;
}

interface MatchedRow {
  seq: number;
  broker_id: string | null;
  packet: string;
}

type InsertParams = [string, string | null, number | null, number | null, string, StoredPayload];
type ReplaceParams = [string | null, number | null, number | null, string, StoredPayload, number];

/**
 * Per-client queues of packets to deliver: QoS > 0 publishes for offline sessions, then the
 * in-flight state (messageId assigned, PUBREL) until the client acknowledges. Rows are kept in
 * enqueue order (seq).
 */
export class OutgoingQueue {
  private readonly insert: Database.Statement<InsertParams>;
  private readonly findSamePacket: Database.Statement<[string, string | null, number | null], MatchedRow>;
  private readonly findSameMessageId: Database.Statement<[string, number | null, string | null], MatchedRow>;
  private readonly setMessageId: Database.Statement<[number | null, string, number]>;
  private readonly replace: Database.Statement<ReplaceParams>;
  private readonly findByMessageId: Database.Statement<[string, number], QueuedRow>;
  private readonly removeSeq: Database.Statement<[number]>;
  private readonly lastSeq: Database.Statement<[], { seq: number | null }>;
  private readonly selectPage: Database.Statement<[string, number, number, number], QueuedRow>;
  private readonly highestCounter: Database.Statement<[string], { counter: number | null }>;
  private readonly trimOldest: Database.Statement<[string, string, number]>;

  /**
   * `maxPerClient`: the most packets not yet sent (no messageId) a client's queue keeps; beyond
   * it the oldest go (MQTT allows dropping QoS 1/2 messages for an offline session), so one
   * session cannot fill the disk. Packets in flight are never dropped (their ack must find them).
   */
  constructor(private readonly db: Db, private readonly pageSize: number, private readonly unreadable: UnreadableSink,
    private readonly maxPerClient = Number.MAX_SAFE_INTEGER) {
    this.insert = db.prepare(
      `INSERT INTO mqtt_outgoing (client_id, broker_id, broker_counter, message_id, packet, payload)
       VALUES (?, ?, ?, ?, ?, ?)`);
    // What update() looks for is the first queued packet that is either this very packet (same
    // broker and counter: it is being sent, record its messageId) or, from another broker, one
    // holding the same messageId (its PUBREL replaces it). Each half is one indexed lookup; the
    // lower seq wins. NULLs compare with IS so a missing field equals a missing field, exactly as
    // aedes-persistence's reference implementation compares with ===.
    this.findSamePacket = db.prepare(
      `SELECT seq, broker_id, packet FROM mqtt_outgoing
       WHERE client_id = ? AND broker_id IS ? AND broker_counter IS ? ORDER BY seq LIMIT 1`);
    this.findSameMessageId = db.prepare(
      `SELECT seq, broker_id, packet FROM mqtt_outgoing
       WHERE client_id = ? AND message_id IS ? AND broker_id IS NOT ? ORDER BY seq LIMIT 1`);
    this.setMessageId = db.prepare('UPDATE mqtt_outgoing SET message_id = ?, packet = ? WHERE seq = ?');
    this.replace = db.prepare(
      `UPDATE mqtt_outgoing SET broker_id = ?, broker_counter = ?, message_id = ?, packet = ?, payload = ?
       WHERE seq = ?`);
    this.findByMessageId = db.prepare(
      'SELECT seq, packet, payload FROM mqtt_outgoing WHERE client_id = ? AND message_id = ? ORDER BY seq LIMIT 1');
    this.removeSeq = db.prepare('DELETE FROM mqtt_outgoing WHERE seq = ?');
    this.lastSeq = db.prepare('SELECT MAX(seq) AS seq FROM mqtt_outgoing');
    this.selectPage = db.prepare(
      `SELECT seq, packet, payload FROM mqtt_outgoing
       WHERE client_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`);
    this.highestCounter = db.prepare('SELECT MAX(broker_counter) AS counter FROM mqtt_outgoing WHERE broker_id = ?');
    // Everything unsent at or below the maxPerClient-th newest row goes (one index walk).
    this.trimOldest = db.prepare(
      `DELETE FROM mqtt_outgoing WHERE client_id = ? AND message_id IS NULL AND seq <= (
         SELECT seq FROM mqtt_outgoing WHERE client_id = ? AND message_id IS NULL ORDER BY seq DESC LIMIT 1 OFFSET ?)`);
  }

  /** Queues one copy of `packet` (messageId unassigned) for each client; returns the clients' oldest packets dropped for it. */
  enqueue(clientIds: readonly string[], packet: PersistedPacket): { clientId: string; dropped: number }[] {
    if (clientIds.length === 0) return [];
    const queued = copyAsQueuedPacket(packet);
    const encoded = encodePacket(queued);
    const brokerId = textOrNull(queued.brokerId);
    const counter = numberOrNull(queued.brokerCounter);
    const messageId = numberOrNull(queued.messageId);
    const drops: { clientId: string; dropped: number }[] = [];
    this.db.transaction(() => {
      for (const clientId of clientIds) {
        this.insert.run(clientId, brokerId, counter, messageId, encoded.json, encoded.payload);
        const dropped = this.trimOldest.run(clientId, clientId, this.maxPerClient).changes;
        if (dropped > 0) drops.push({ clientId, dropped });
      }
    })();
    return drops;
  }

  /**
   * Records what the broker did with a queued packet: gave it a messageId, or (a PUBREL)
   * replaced it. Throws when no queued packet corresponds, as the reference implementation does.
   */
  update(clientId: string, packet: PersistedPacket): void {
    const brokerId = textOrNull(packet.brokerId);
    const messageId = numberOrNull(packet.messageId);
    const samePacket = this.findSamePacket.get(clientId, brokerId, numberOrNull(packet.brokerCounter));
    const sameMessageId = this.findSameMessageId.get(clientId, messageId, brokerId);
    const row = samePacket === undefined || (sameMessageId !== undefined && sameMessageId.seq < samePacket.seq)
      ? sameMessageId
      : samePacket;
    if (row === undefined) throw new Error('no such packet');
    if (row.broker_id === brokerId) {
      const fields = decodeFields(row.packet);
      fields.messageId = packet.messageId;
      this.setMessageId.run(messageId, encodeFields(fields), row.seq);
      return;
    }
    const encoded = encodePacket(packet);
    this.replace.run(brokerId, numberOrNull(packet.brokerCounter), messageId, encoded.json, encoded.payload, row.seq);
  }

  /** Removes the first queued packet with this messageId (an ack arrived) and returns it. */
  clear(clientId: string, messageId: number): PersistedPacket | undefined {
    const row = this.findByMessageId.get(clientId, messageId);
    if (row === undefined) return undefined;
    this.removeSeq.run(row.seq);
    return this.read(clientId, row) ?? undefined;
  }

  /**
   * The client's queue as it is now: packets enqueued after this call are left for the next
   * stream (the broker delivers those live), while packets cleared meanwhile are skipped.
   */
  snapshot(clientId: string, isOpen: () => boolean): Generator<PersistedPacket, void, undefined> {
    const upTo = this.lastSeq.get()?.seq ?? 0;
    return this.readUpTo(clientId, upTo, isOpen);
  }

  /** Drops the client's whole queue (its session is discarded). */
  discard(clientId: string): number {
    return this.db.prepare('DELETE FROM mqtt_outgoing WHERE client_id = ?').run(clientId).changes;
  }

  /** Highest brokerCounter queued by a broker with this id; 0 when it queued nothing. */
  highestCounterOf(brokerId: string): number {
    return this.highestCounter.get(brokerId)?.counter ?? 0;
  }

  private *readUpTo(clientId: string, upTo: number, isOpen: () => boolean): Generator<PersistedPacket, void, undefined> {
    const rows = pagedRows<QueuedRow>(
      (last) => this.selectPage.all(clientId, last?.seq ?? 0, upTo, this.pageSize),
      this.pageSize,
      isOpen,
    );
    for (const row of rows) {
      const packet = this.read(clientId, row);
      // An unreadable queued packet can never be delivered, so never acked: drop it rather than
      // fail the client's session on every reconnect.
      if (packet === null) this.removeSeq.run(row.seq);
      else yield packet;
    }
  }

  private read(clientId: string, row: QueuedRow): PersistedPacket | null {
    return readStoredPacket(row.packet, row.payload, this.unreadable, { table: 'mqtt_outgoing', key: `${clientId} #${row.seq}` });
  }
}

function textOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' ? value : null;
}
