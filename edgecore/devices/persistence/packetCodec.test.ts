import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { copyAsQueuedPacket, decodePacket, encodePacket, hasEmptyPayload, readStoredPacket, type PersistedPacket, type UnreadableRow } from './packetCodec.js';

function roundTrip(packet: object): PersistedPacket {
  const { json, payload } = encodePacket(packet);
  return decodePacket(json, payload);
}

describe('encodePacket / decodePacket', () => {
  it('keeps a Buffer payload a Buffer and a string payload a string', () => {
    const binary = roundTrip({ topic: 't', payload: Buffer.from([0, 1, 255]) });
    expect(Buffer.isBuffer(binary.payload)).toBe(true);
    expect(binary.payload).toEqual(Buffer.from([0, 1, 255]));
    expect(roundTrip({ topic: 't', payload: 'text' }).payload).toBe('text');
  });

  it('stores the payload apart from the JSON', () => {
    const encoded = encodePacket({ topic: 't', payload: Buffer.from('secret-bytes') });
    expect(encoded.json).not.toContain('secret');
    expect(encoded.payload).toEqual(Buffer.from('secret-bytes'));
  });

  it('keeps fields that are present but undefined, and nested Buffers', () => {
    const packet = {
      cmd: 'publish',
      topic: 't',
      payload: Buffer.alloc(0),
      messageId: undefined,
      properties: { correlationData: Buffer.from('corr'), userProperties: { a: ['1', '2'] } },
    };
    const back = roundTrip(packet);
    expect(back).toStrictEqual(packet);
    expect(Object.prototype.hasOwnProperty.call(back, 'messageId')).toBe(true);
  });

  it('leaves out the payload field when the packet has none (PUBREL)', () => {
    const back = roundTrip({ cmd: 'pubrel', messageId: 7 });
    expect(back).toStrictEqual({ cmd: 'pubrel', messageId: 7 });
  });

  it('drops functions and keeps a __proto__ field as plain data', () => {
    const packet: Record<string, unknown> = { topic: 't', writeCallback: () => undefined };
    Object.defineProperty(packet, '__proto__', { value: { polluted: true }, enumerable: true });
    const back = roundTrip(packet);
    expect(back.writeCallback).toBeUndefined();
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toStrictEqual({ polluted: true });
  });

  it('returns a fresh object on every decode', () => {
    const { json, payload } = encodePacket({ topic: 't', payload: 'x' });
    expect(decodePacket(json, payload)).not.toBe(decodePacket(json, payload));
  });
});

describe('copyAsQueuedPacket', () => {
  // The copy must stay what aedes-packet's constructor makes (the reference persistence queues
  // `new Packet(p)`); aedes-packet is a dependency of aedes-persistence, so load it from there.
  type PacketConstructor = new (original: object) => object;
  const requireFromPersistence = createRequire(createRequire(import.meta.url).resolve('aedes-persistence'));
  const Packet: PacketConstructor = requireFromPersistence('aedes-packet');

  it.each<[string, PersistedPacket]>([
    ['a QoS 1 publish', { cmd: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 1, brokerId: 'b', brokerCounter: 3, messageId: 9, length: 14 }],
    ['a QoS 0 publish', { topic: 'a', payload: 'x', retain: true }],
    ['an MQTT 5 publish', { cmd: 'publish', topic: 'a', qos: 2, properties: { contentType: 'text/plain' }, messageExpiry: 123, nl: true, clientId: 'c' }],
    ['a pubrel', { cmd: 'pubrel', messageId: 4 }],
  ])('matches aedes-packet for %s', (_name, original) => {
    expect({ ...copyAsQueuedPacket(original) }).toStrictEqual({ ...new Packet(original) });
  });
});

describe('hasEmptyPayload', () => {
  it('is true for empty or missing payloads only', () => {
    expect(hasEmptyPayload({ payload: Buffer.alloc(0) })).toBe(true);
    expect(hasEmptyPayload({ payload: '' })).toBe(true);
    expect(hasEmptyPayload({})).toBe(true);
    expect(hasEmptyPayload({ payload: 'x' })).toBe(false);
    expect(hasEmptyPayload({ payload: new Uint8Array([1]) })).toBe(false);
  });
});

describe('readStoredPacket', () => {
  const row = { table: 'mqtt_retained', key: 'a/b' } as const;
  const read = (json: string, payload: Buffer | string | null) => {
    const told: UnreadableRow[] = [];
    return { packet: readStoredPacket(json, payload, (r) => told.push(r), row), told };
  };

  it('gives back a packet that reads', () => {
    const stored = encodePacket({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 1, retain: true });
    expect(read(stored.json, stored.payload)).toEqual({ packet: { cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 1, retain: true }, told: [] });
    expect(read('{"cmd":"pubrel","messageId":7}', null).packet).toEqual({ cmd: 'pubrel', messageId: 7 });
  });

  it('tells the sink, naming the row and why, and returns null for what no broker could send', () => {
    expect(read('{torn', 'x')).toEqual({ packet: null, told: [{ ...row, reason: expect.stringContaining('JSON') }] });
    expect(read('[1]', 'x').told[0]!.reason).toBe('stored packet is not a JSON object');
    expect(read('{"cmd":5,"topic":"a/b"}', 'x').told[0]!.reason).toBe('stored packet has a cmd that is not a string');
    expect(read('{"cmd":"publish"}', 'x').told[0]!.reason).toBe('stored packet is a publish without a topic');
    expect(read('{"qos":1}', 'x').told[0]!.reason).toBe('stored packet is a publish without a topic');
    // A will (no cmd, from CONNECT) is a packet.
    expect(read('{"topic":"a/b","qos":1}', 'bye').packet).toEqual({ topic: 'a/b', qos: 1, payload: 'bye' });
  });
});
