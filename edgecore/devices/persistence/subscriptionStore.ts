import type Database from 'better-sqlite3';
import { pagedRows } from './paging.js';
import type { Db } from './schema.js';
import { SubscriptionMatcher, type MatchedSubscription, type SubscriptionOptions } from './topicMatcher.js';

/** One entry of a SUBSCRIBE as aedes passes it, and as subscriptionsByClient gives it back. */
export interface SessionSubscription extends SubscriptionOptions {
  topic: string;
  /** MQTT 5 Subscription Identifier; present only when the subscription carried one. */
  subscriptionIdentifier?: number;
}

interface SubscriptionRow {
  topic: string;
  qos: number;
  rh: number | null;
  rap: number | null;
  nl: number | null;
  subscription_identifier: number | null;
}

interface RoutableRow extends SubscriptionRow {
  client_id: string;
}

interface ClientRow {
  seq: number;
  client_id: string;
}

type UpsertParams = [string, string, number, number | null, number | null, number | null, number | null];

/**
 * Subscriptions of persistent sessions. The table is the truth; the matcher is an in-memory
 * index of the QoS > 0 ones (the only ones offline routing needs), loaded on construction and
 * kept in step after every committed change, so routing a publish never reads the table.
 */
export class SubscriptionStore {
  private readonly matcher = new SubscriptionMatcher();
  private readonly upsert: Database.Statement<UpsertParams>;
  private readonly removeOne: Database.Statement<[string, string]>;
  private readonly removeClient: Database.Statement<[string]>;
  private readonly selectByClient: Database.Statement<[string], SubscriptionRow>;
  private readonly selectRoutable: Database.Statement<[], RoutableRow>;
  private readonly countClients: Database.Statement<[], { clients: number }>;
  private readonly selectClientsOfTopic: Database.Statement<[string, number, number], ClientRow>;

  constructor(private readonly db: Db, private readonly pageSize: number) {
    const columns = 'topic, qos, rh, rap, nl, subscription_identifier';
    this.upsert = db.prepare(
      `INSERT INTO mqtt_subscriptions (client_id, topic, qos, rh, rap, nl, subscription_identifier)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(client_id, topic) DO UPDATE SET qos = excluded.qos, rh = excluded.rh, rap = excluded.rap,
         nl = excluded.nl, subscription_identifier = excluded.subscription_identifier`);
    this.removeOne = db.prepare('DELETE FROM mqtt_subscriptions WHERE client_id = ? AND topic = ?');
    this.removeClient = db.prepare('DELETE FROM mqtt_subscriptions WHERE client_id = ?');
    this.selectByClient = db.prepare(`SELECT ${columns} FROM mqtt_subscriptions WHERE client_id = ? ORDER BY rowid`);
    this.selectRoutable = db.prepare(`SELECT client_id, ${columns} FROM mqtt_subscriptions WHERE qos > 0 ORDER BY rowid`);
    this.countClients = db.prepare('SELECT COUNT(DISTINCT client_id) AS clients FROM mqtt_subscriptions');
    this.selectClientsOfTopic = db.prepare(
      'SELECT rowid AS seq, client_id FROM mqtt_subscriptions WHERE topic = ? AND rowid > ? ORDER BY rowid LIMIT ?');
    for (const row of this.selectRoutable.iterate()) {
      this.matcher.add(row.topic, row.client_id, toSubscription(row));
    }
  }

  /** Adds or replaces subscriptions; a later entry for the same topic wins, as in one SUBSCRIBE. */
  add(clientId: string, subscriptions: readonly SessionSubscription[]): void {
    this.db.transaction(() => {
      for (const sub of subscriptions) {
        this.upsert.run(clientId, sub.topic, sub.qos, optionalInteger(sub.rh), optionalFlag(sub.rap),
          optionalFlag(sub.nl), optionalInteger(sub.subscriptionIdentifier));
      }
    })();
    for (const sub of subscriptions) {
      if (sub.qos > 0) this.matcher.add(sub.topic, clientId, sub);
      else this.matcher.remove(sub.topic, clientId);
    }
  }

  remove(clientId: string, topics: readonly string[]): void {
    this.db.transaction(() => {
      for (const topic of topics) this.removeOne.run(clientId, topic);
    })();
    for (const topic of topics) this.matcher.remove(topic, clientId);
  }

  /** Drops every subscription of the client (its session is discarded). */
  clean(clientId: string): void {
    const topics = this.selectByClient.all(clientId).map((row) => row.topic);
    this.removeClient.run(clientId);
    for (const topic of topics) this.matcher.remove(topic, clientId);
  }

  /** The client's subscriptions in the order they were first made. */
  byClient(clientId: string): SessionSubscription[] {
    return this.selectByClient.all(clientId).map(toSubscription);
  }

  /** QoS > 0 subscriptions, of any client, whose filter matches the PUBLISH topic. */
  matching(topic: string): MatchedSubscription[] {
    return this.matcher.match(topic);
  }

  /** QoS > 0 subscriptions, and clients with any subscription at all. */
  count(): { subsCount: number; clientsCount: number } {
    return { subsCount: this.matcher.size, clientsCount: this.countClients.get()?.clients ?? 0 };
  }

  /** Ids of the clients subscribed to exactly this filter, in subscription order. */
  *clientsOf(topic: string, isOpen: () => boolean): Generator<string, void, undefined> {
    const rows = pagedRows<ClientRow>(
      (last) => this.selectClientsOfTopic.all(topic, last?.seq ?? 0, this.pageSize),
      this.pageSize,
      isOpen,
    );
    for (const row of rows) yield row.client_id;
  }
}

// Same shape as aedes-persistence's in-memory store: rh, rap and nl always present (undefined
// when the SUBSCRIBE had none), subscriptionIdentifier only when there is one.
function toSubscription(row: SubscriptionRow): SessionSubscription {
  const sub: SessionSubscription = {
    topic: row.topic,
    qos: row.qos,
    rh: row.rh ?? undefined,
    rap: row.rap === null ? undefined : row.rap === 1,
    nl: row.nl === null ? undefined : row.nl === 1,
  };
  if (row.subscription_identifier !== null) sub.subscriptionIdentifier = row.subscription_identifier;
  return sub;
}

function optionalInteger(value: number | undefined): number | null {
  return value === undefined ? null : value;
}

function optionalFlag(value: boolean | undefined): number | null {
  return value === undefined ? null : value ? 1 : 0;
}
