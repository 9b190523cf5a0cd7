import type Database from 'better-sqlite3';
import { encodePacket, hasEmptyPayload, readStoredPacket, type PersistedPacket, type StoredPayload, type UnreadableSink } from './packetCodec.js';
import { pagedRows } from './paging.js';
import type { Db } from './schema.js';
import { coveringPrefixes, literalPrefixOf, topicMatchesFilter } from './topicMatcher.js';

interface RetainedRow {
  topic: string;
  packet: string;
  payload: StoredPayload;
}

// Upper bound of a prefix range: SQLite compares TEXT as UTF-8 bytes, which orders like code
// points, so every topic starting with `p` sorts below `p + U+10FFFF` unless its next character is
// U+10FFFF itself, a noncharacter that MQTT topic names should not contain (MQTT 3.1.1 §1.5.3).
const HIGHEST_CODE_POINT = '\u{10FFFF}';

/** Retained messages, one per topic. */
export class RetainedStore {
  private readonly upsert: Database.Statement<[string, string, StoredPayload]>;
  private readonly remove: Database.Statement<[string]>;
  private readonly firstInRange: Database.Statement<[string, string, number], RetainedRow>;
  private readonly nextInRange: Database.Statement<[string, string, number], RetainedRow>;

  constructor(db: Db, private readonly pageSize: number, private readonly unreadable: UnreadableSink) {
    this.upsert = db.prepare(
      `INSERT INTO mqtt_retained (topic, packet, payload) VALUES (?, ?, ?)
       ON CONFLICT(topic) DO UPDATE SET packet = excluded.packet, payload = excluded.payload`);
    this.remove = db.prepare('DELETE FROM mqtt_retained WHERE topic = ?');
    this.firstInRange = db.prepare(
      'SELECT topic, packet, payload FROM mqtt_retained WHERE topic >= ? AND topic < ? ORDER BY topic LIMIT ?');
    this.nextInRange = db.prepare(
      'SELECT topic, packet, payload FROM mqtt_retained WHERE topic > ? AND topic < ? ORDER BY topic LIMIT ?');
  }

  /** Keeps `packet` as the retained message of its topic; an empty payload clears the topic. */
  store(packet: PersistedPacket): void {
    const topic = packet.topic;
    if (typeof topic !== 'string') throw new TypeError('a retained message needs a topic');
    if (hasEmptyPayload(packet)) {
      this.remove.run(topic);
      return;
    }
    const encoded = encodePacket(packet);
    this.upsert.run(topic, encoded.json, encoded.payload);
  }

  /**
   * Retained messages whose topic matches any of `filters`, each once, in topic order. Only the
   * index ranges the filters' literal prefixes allow are read: the ranges are disjoint and sorted,
   * so reading them one after the other keeps topic order without a row appearing twice.
   */
  *matching(filters: readonly string[], isOpen: () => boolean): Generator<PersistedPacket, void, undefined> {
    if (filters.length === 0) return;
    for (const prefix of coveringPrefixes(filters.map(literalPrefixOf))) {
      const end = prefix + HIGHEST_CODE_POINT;
      const rows = pagedRows<RetainedRow>(
        (last) => (last === undefined
          ? this.firstInRange.all(prefix, end, this.pageSize)
          : this.nextInRange.all(last.topic, end, this.pageSize)),
        this.pageSize,
        isOpen,
      );
      for (const row of rows) {
        if (!filters.some((filter) => topicMatchesFilter(filter, row.topic))) continue;
        const packet = readStoredPacket(row.packet, row.payload, this.unreadable, { table: 'mqtt_retained', key: row.topic });
        // An unreadable retained message is dropped: the next publish to its topic stores it again.
        if (packet === null) this.remove.run(row.topic);
        else yield packet;
      }
    }
  }
}
