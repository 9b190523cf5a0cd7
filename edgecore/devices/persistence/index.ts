export {
  SqlitePersistence,
  createSqlitePersistence,
  type PersistenceBroker,
  type PersistenceClient,
  type SqlitePersistenceOptions,
} from './sqlitePersistence.js';
export type { PersistedPacket } from './packetCodec.js';
export type { SessionSubscription } from './subscriptionStore.js';
export type { MatchedSubscription, SubscriptionOptions } from './topicMatcher.js';
export { MQTT_SCHEMA_VERSION, type MqttSyncMode } from './schema.js';
