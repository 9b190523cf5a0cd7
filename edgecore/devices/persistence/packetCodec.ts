/**
 * How MQTT packets are written to and read back from SQLite rows.
 *
 * A packet is split in two: its payload goes to a column as it is (SQLite keeps a TEXT payload
 * as TEXT and a BLOB as BLOB, so a string comes back a string and a Buffer a Buffer), and every
 * other field to JSON. Plain JSON would lose two things aedes and the aedes-persistence contract
 * rely on, so they are tagged: Buffers nested in fields (MQTT 5 correlation data) and fields that
 * are present but `undefined` (aedes-packet sets `messageId: undefined` on queued packets).
 * Functions (aedes hangs a `writeCallback` on packets in flight) are dropped, as JSON does.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A packet as aedes hands it to the persistence: the mqtt-packet fields, aedes' brokerId and
 * brokerCounter, and whatever else it carries (MQTT 5 properties, messageExpiry), all kept.
 */
export interface PersistedPacket {
  cmd?: string;
  topic?: string;
  payload?: unknown;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  messageId?: number;
  brokerId?: string;
  brokerCounter?: number;
  clientId?: string;
  [field: string]: unknown;
}

/** What the payload column holds; null when the packet has no payload field (PUBREL). */
export type StoredPayload = Buffer | string | null;

export interface EncodedPacket {
  json: string;
  payload: StoredPayload;
}

// Tags for values JSON cannot carry. No MQTT packet field is an object with exactly one of these
// keys (user properties map to strings or string arrays), so they cannot be confused with data.
const BUFFER_TAG = '$mqttBuffer';
const UNDEFINED_TAG = '$mqttUndefined';

/** Splits a packet into its payload column value and the JSON of every other field. */
export function encodePacket(packet: object): EncodedPacket {
  const fields: Record<string, unknown> = { ...packet };
  const payload = fields.payload;
  let stored: StoredPayload = null;
  if (typeof payload === 'string') {
    stored = payload;
    delete fields.payload;
  } else if (payload instanceof Uint8Array) {
    stored = asBuffer(payload);
    delete fields.payload;
  }
  return { json: encodeFields(fields), payload: stored };
}

/** Rebuilds a packet from its row: a fresh object every call, never shared with the caller. */
export function decodePacket(json: string, payload: StoredPayload): PersistedPacket {
  const packet: PersistedPacket = decodeFields(json);
  if (payload !== null) packet.payload = payload;
  return packet;
}

/** A stored row that does not decode to a packet aedes can send: which table, which row, why. */
export interface UnreadableRow {
  table: 'mqtt_retained' | 'mqtt_outgoing' | 'mqtt_incoming' | 'mqtt_wills';
  /** The row's key: topic, client id, or client id and seq / messageId. */
  key: string;
  reason: string;
}

/** Told about each unreadable row as it is dropped; the row is deleted either way. */
export type UnreadableSink = (row: UnreadableRow) => void;

/**
 * decodePacket for rows read back from disk: null when the row cannot be a packet (a hand
 * edit, a torn write, a format this code does not know), after telling `sink`. Reading must
 * not throw: a throw inside a retained or queue stream is an uncaught exception in aedes.
 */
export function readStoredPacket(json: string, payload: StoredPayload, sink: UnreadableSink, row: Omit<UnreadableRow, 'reason'>): PersistedPacket | null {
  let packet: PersistedPacket;
  try {
    packet = decodePacket(json, payload);
  } catch (err) {
    sink({ ...row, reason: (err as Error).message });
    return null;
  }
  // Wills carry no cmd (they come from CONNECT); PUBRELs no topic. A publish or a will without a
  // topic could only fail later, inside aedes.
  const { cmd } = packet;
  const problem = cmd !== undefined && typeof cmd !== 'string' ? 'stored packet has a cmd that is not a string'
    : (cmd === undefined || cmd === 'publish') && typeof packet.topic !== 'string' ? 'stored packet is a publish without a topic'
      : null;
  if (problem === null) return packet;
  sink({ ...row, reason: problem });
  return null;
}

/** JSON of an object's own fields, keeping nested Buffers and fields that are `undefined`. */
export function encodeFields(fields: object): string {
  return JSON.stringify(toJsonSafe(fields));
}

/** Inverse of encodeFields. */
export function decodeFields(json: string): Record<string, unknown> {
  const parsed: JsonValue = JSON.parse(json);
  const value = fromJsonSafe(parsed);
  if (!isRecord(value)) throw new TypeError('stored packet is not a JSON object');
  return value;
}

/**
 * The copy aedes-persistence keeps of a packet it queues (aedes-packet 4 `new Packet(p)`):
 * the standard fields with their defaults, MQTT 5 properties and expiry carried over, and a
 * messageId that is unassigned (`undefined`) for anything that needs one, because the broker
 * assigns it when it actually sends. Fields outside that list (`length`, callbacks) are dropped.
 */
export function copyAsQueuedPacket(original: PersistedPacket): PersistedPacket {
  const copy: PersistedPacket = {};
  for (const field of ['clientId', 'nl', 'properties', 'messageExpiry']) {
    if (Object.prototype.hasOwnProperty.call(original, field)) copy[field] = original[field];
  }
  const cmd = original.cmd || 'publish';
  const qos = original.qos || 0;
  copy.cmd = cmd;
  copy.brokerId = original.brokerId || undefined;
  copy.brokerCounter = original.brokerCounter || 0;
  copy.topic = original.topic;
  copy.payload = original.payload || Buffer.alloc(0);
  copy.qos = qos;
  copy.retain = original.retain || false;
  copy.dup = original.dup || false;
  if (qos > 0 || cmd !== 'publish') copy.messageId = undefined;
  return copy;
}

/** Whether a retained PUBLISH clears its topic: an empty payload, [MQTT-3.3.1-10]. */
export function hasEmptyPayload(packet: PersistedPacket): boolean {
  const payload = packet.payload;
  if (payload === undefined || payload === null) return true;
  if (typeof payload === 'string' || payload instanceof Uint8Array) return payload.length === 0;
  return false;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toJsonSafe(value: unknown): JsonValue {
  if (value === undefined) return { [UNDEFINED_TAG]: true };
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') {
    return value;
  }
  if (value instanceof Uint8Array) return { [BUFFER_TAG]: asBuffer(value).toString('base64') };
  if (Array.isArray(value)) {
    return value.map((item) => (typeof item === 'function' || typeof item === 'symbol' ? null : toJsonSafe(item)));
  }
  if (typeof value === 'bigint') throw new TypeError('cannot store a bigint in a packet');
  if (typeof value === 'object') {
    const withToJson: { toJSON?: unknown } = value;
    if (typeof withToJson.toJSON === 'function') return toJsonSafe(withToJson.toJSON());
    const out: { [key: string]: JsonValue } = {};
    for (const [key, field] of Object.entries(value)) {
      if (typeof field === 'function' || typeof field === 'symbol') continue;
      setOwn(out, key, toJsonSafe(field));
    }
    return out;
  }
  // functions and symbols at the top level: nothing to keep
  return null;
}

function fromJsonSafe(value: JsonValue): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromJsonSafe);
  const keys = Object.keys(value);
  if (keys.length === 1) {
    const tagged = value[BUFFER_TAG];
    if (typeof tagged === 'string') return Buffer.from(tagged, 'base64');
    if (value[UNDEFINED_TAG] === true) return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const key of keys) setOwn(out, key, fromJsonSafe(value[key]));
  return out;
}

/** Assignment that makes `__proto__` an ordinary own field instead of changing the prototype. */
function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}
