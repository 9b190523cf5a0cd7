import { Readable } from 'node:stream';
import { IncomingStore } from './incomingStore.js';
import { OutgoingQueue } from './outgoingQueue.js';
import type { PersistedPacket, UnreadableRow } from './packetCodec.js';
import { DEFAULT_PAGE_SIZE } from './paging.js';
import { RetainedStore } from './retainedStore.js';
import { migrateMqttSchema, openMqttDatabase, type Db, type MqttSyncMode } from './schema.js';
import { SubscriptionStore, type SessionSubscription } from './subscriptionStore.js';
import { WillStore } from './willStore.js';
import type { MatchedSubscription } from './topicMatcher.js';

/** The part of an aedes client the persistence uses. */
export interface PersistenceClient {
  id: string;
}

/** The part of the aedes broker the persistence uses: its id, and the counter it numbers packets with. */
export interface PersistenceBroker {
  id: string;
  counter: number;
}

export type SqlitePersistenceOptions = ({
  /** Database file to open (created if missing) for the broker alone; closed by destroy(). */
  path: string;
  /** Commit durability of that file; default 'full'. */
  sync?: MqttSyncMode;
} | {
  /** An open database shared with its owner (the edge's own), used with the owner's settings; the owner closes it. */
  db: Db;
}) & {
  /** Rows read per query by the streams; bounds the memory a stream holds. */
  pageSize?: number;
  /** Most unsent packets queued per persistent session; the oldest are dropped beyond it (default: no limit). */
  maxQueuedPerClient?: number;
  /** Told when a session's oldest queued packets were dropped for the limit above. */
  onQueueDrop?: (clientId: string, dropped: number) => void;
  /**
   * Told about each stored packet that cannot be read back (retained, queued, QoS 2, will):
   * such a row is deleted and skipped instead of failing the stream that met it.
   */
  onUnreadable?: (row: UnreadableRow) => void;
  /**
   * Packets no subscriber may receive (the device hub's refused messages): not queued for
   * persistent sessions, where an offline one would get them at its next connect.
   */
  neverQueue?: (packet: PersistedPacket) => boolean;
};

/**
 * Persistence for an aedes 1.x broker in SQLite (better-sqlite3), implementing the async
 * interface of aedes-persistence 11: retained messages, persistent sessions (subscriptions and
 * queued QoS > 0 packets), QoS 2 receive state and will messages all survive a restart. Pass it
 * as `Aedes.createBroker({ persistence })`.
 *
 * better-sqlite3 is synchronous, so each method does its work, committed, before its promise
 * settles: once aedes acks a PUBLISH, what it stored for it is on disk. Streams read in pages,
 * and the only in-memory copy of table data is the index of QoS > 0 subscriptions that routes
 * publishes to offline sessions. One broker per database: two instances on the same tables
 * would each route with their own index.
 */
export class SqlitePersistence {
  private readonly db: Db;
  private readonly ownsDb: boolean;
  private readonly retained: RetainedStore;
  private readonly subscriptions: SubscriptionStore;
  private readonly outgoing: OutgoingQueue;
  private readonly incoming: IncomingStore;
  private readonly wills: WillStore;
  private boundBroker: PersistenceBroker | undefined;
  private unreadableDropped = 0;
  private queueDrops = 0;
  private readonly onQueueDrop: (clientId: string, dropped: number) => void;
  private destroyed = false;
  private readonly isOpen = (): boolean => !this.destroyed;
  private readonly neverQueue: (packet: PersistedPacket) => boolean;

  constructor(options: SqlitePersistenceOptions) {
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.neverQueue = options.neverQueue ?? (() => false);
    this.onQueueDrop = options.onQueueDrop ?? (() => undefined);
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError('pageSize must be a positive integer');
    if ('db' in options) {
      this.db = options.db;
      this.ownsDb = false;
    } else {
      this.db = openMqttDatabase(options.path, options.sync);
      this.ownsDb = true;
    }
    const unreadable = (row: UnreadableRow): void => {
      this.unreadableDropped++;
      options.onUnreadable?.(row);
    };
    try {
      migrateMqttSchema(this.db);
      this.retained = new RetainedStore(this.db, pageSize, unreadable);
      this.subscriptions = new SubscriptionStore(this.db, pageSize);
      this.outgoing = new OutgoingQueue(this.db, pageSize, unreadable, options.maxQueuedPerClient);
      this.incoming = new IncomingStore(this.db, unreadable);
      this.wills = new WillStore(this.db, pageSize, unreadable);
    } catch (err) {
      if (this.ownsDb) this.db.close();
      throw err;
    }
  }

  /**
   * Client ids of persistent sessions (ones with subscriptions) that are `name` or start with
   * `name-`, oldest first (by their first subscription): a device's sessions (deviceAcl.ts).
   */
  sessionsNamed(name: string): string[] {
    this.assertOpen();
    return this.db.prepare<[string, number, string], { client_id: string }>(
      `SELECT client_id FROM mqtt_subscriptions WHERE client_id = ? OR substr(client_id, 1, ?) = ?
       GROUP BY client_id ORDER BY MIN(rowid)`).all(name, name.length + 1, `${name}-`).map((row) => row.client_id);
  }

  /** Discards a persistent session that is not connected: its subscriptions, queued packets and QoS 2 state. */
  discardSession(clientId: string): void {
    this.assertOpen();
    this.db.transaction(() => {
      this.subscriptions.clean(clientId);
      this.outgoing.discard(clientId);
      this.incoming.clean(clientId);
    })();
  }

  /** Queued packets dropped for the per-session limit, since this instance opened. */
  get queuedDropped(): number {
    return this.queueDrops;
  }

  private countDrops(drops: readonly { clientId: string; dropped: number }[]): void {
    for (const { clientId, dropped } of drops) {
      this.queueDrops += dropped;
      this.onQueueDrop(clientId, dropped);
    }
  }

  /** Stored packets dropped because they could not be read back, since this instance opened. */
  get unreadableRowsDropped(): number {
    return this.unreadableDropped;
  }

  /** The broker given to setup(). */
  get broker(): PersistenceBroker {
    if (this.boundBroker === undefined) throw new Error('the persistence has not been set up with a broker');
    return this.boundBroker;
  }

  /** Called by aedes as it starts listening. */
  async setup(broker: PersistenceBroker): Promise<void> {
    this.assertOpen();
    this.boundBroker = broker;
    // aedes numbers packets with broker.counter from 0 on every start and finds a queued packet
    // again by (brokerId, brokerCounter). A broker restarted with a fixed id would hand out
    // counters its previous run left in the queue, so continue after the highest one stored.
    const highest = this.outgoing.highestCounterOf(broker.id);
    if (typeof broker.counter === 'number' && broker.counter < highest) broker.counter = highest;
  }

  async storeRetained(packet: PersistedPacket): Promise<void> {
    this.assertOpen();
    this.retained.store(packet);
  }

  /** Retained messages matching the filter. Deprecated upstream in favour of the Combi form. */
  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  /** Retained messages matching any of the filters, each once. */
  createRetainedStreamCombi(patterns: readonly string[]): Readable {
    this.assertOpen();
    return Readable.from(this.retained.matching(patterns, this.isOpen));
  }

  async addSubscriptions(client: PersistenceClient, subs: readonly SessionSubscription[]): Promise<void> {
    this.assertOpen();
    this.subscriptions.add(client.id, subs);
  }

  async removeSubscriptions(client: PersistenceClient, topics: readonly string[]): Promise<void> {
    this.assertOpen();
    this.subscriptions.remove(client.id, topics);
  }

  async subscriptionsByClient(client: PersistenceClient): Promise<SessionSubscription[]> {
    this.assertOpen();
    return this.subscriptions.byClient(client.id);
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    this.assertOpen();
    return this.subscriptions.count();
  }

  async subscriptionsByTopic(topic: string): Promise<MatchedSubscription[]> {
    this.assertOpen();
    return this.subscriptions.matching(topic);
  }

  async cleanSubscriptions(client: PersistenceClient): Promise<void> {
    this.assertOpen();
    this.subscriptions.clean(client.id);
  }

  /** Deprecated upstream in favour of outgoingEnqueueCombi. */
  async outgoingEnqueue(sub: { clientId: string }, packet: PersistedPacket): Promise<void> {
    this.assertOpen();
    if (this.neverQueue(packet)) return;
    this.countDrops(this.outgoing.enqueue([sub.clientId], packet));
  }

  async outgoingEnqueueCombi(subs: readonly { clientId: string }[], packet: PersistedPacket): Promise<void> {
    this.assertOpen();
    if (this.neverQueue(packet)) return;
    this.countDrops(this.outgoing.enqueue(subs.map((sub) => sub.clientId), packet));
  }

  async outgoingUpdate(client: PersistenceClient, packet: PersistedPacket): Promise<void> {
    this.assertOpen();
    this.outgoing.update(client.id, packet);
  }

  /**
   * Removes the queued packet the client acknowledged and returns it; undefined when there is
   * none. An ack without a messageId clears nothing (the reference implementation would take the
   * first packet that has no messageId yet, i.e. one not even sent).
   */
  async outgoingClearMessageId(client: PersistenceClient, packet: PersistedPacket): Promise<PersistedPacket | undefined> {
    this.assertOpen();
    const messageId: unknown = typeof packet === 'object' && packet !== null ? packet.messageId : undefined;
    if (typeof messageId !== 'number') return undefined;
    return this.outgoing.clear(client.id, messageId);
  }

  /** The client's queued packets as of this call, oldest first. */
  outgoingStream(client: PersistenceClient): Readable {
    this.assertOpen();
    return Readable.from(this.outgoing.snapshot(client.id, this.isOpen));
  }

  async incomingStorePacket(client: PersistenceClient, packet: PersistedPacket): Promise<void> {
    this.assertOpen();
    this.incoming.store(client.id, packet);
  }

  async incomingGetPacket(client: PersistenceClient, packet: PersistedPacket): Promise<PersistedPacket> {
    this.assertOpen();
    return this.incoming.get(client.id, packet);
  }

  async incomingDelPacket(client: PersistenceClient, packet: PersistedPacket): Promise<void> {
    this.assertOpen();
    this.incoming.delete(client.id, packet);
  }

  async cleanIncoming(client: PersistenceClient): Promise<void> {
    this.assertOpen();
    this.incoming.clean(client.id);
  }

  /** Stores the client's will, stamping it (in place, as aedes expects) with broker and client id. */
  async putWill(client: PersistenceClient, packet: PersistedPacket): Promise<void> {
    this.assertOpen();
    packet.brokerId = this.broker.id;
    packet.clientId = client.id;
    this.wills.put(client.id, packet);
  }

  async getWill(client: PersistenceClient): Promise<PersistedPacket | undefined> {
    this.assertOpen();
    return this.wills.get(client.id);
  }

  async delWill(client: PersistenceClient): Promise<PersistedPacket | undefined> {
    this.assertOpen();
    return this.wills.delete(client.id);
  }

  /** Wills left by brokers that are not in `brokers` (id → last heartbeat), i.e. to be published. */
  streamWill(brokers: Readonly<Record<string, unknown>> = {}): Readable {
    this.assertOpen();
    return Readable.from(this.wills.orphaned(brokers, this.isOpen));
  }

  /** Ids of the clients with a persistent subscription to exactly this filter. */
  getClientList(topic: string): Readable {
    this.assertOpen();
    return Readable.from(this.subscriptions.clientsOf(topic, this.isOpen));
  }

  /**
   * Stops using the database; closes it if this persistence opened it. Data stays on disk for the
   * next start. Calling it again does nothing. Streams still being read end early.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.ownsDb) this.db.close();
  }

  private assertOpen(): void {
    if (this.destroyed) throw new Error('the MQTT persistence has been destroyed');
  }
}

/** Same as `new SqlitePersistence(options)`. */
export function createSqlitePersistence(options: SqlitePersistenceOptions): SqlitePersistence {
  return new SqlitePersistence(options);
}
