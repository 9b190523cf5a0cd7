import { describe, expect, it } from 'vitest';
import { RefusedMessages } from './refusedMessages.js';

describe('RefusedMessages', () => {
  it('knows a refused payload in any packet that carries the same buffer, and nothing else', () => {
    const refused = new RefusedMessages();
    const payload = Buffer.from('{"properties":{"temperature":500}}');
    refused.add(payload);
    const packet = { topic: 'ef/devices/a/twin/reported', qos: 1, payload };
    expect(refused.includes(packet)).toBe(true);
    const copy = { ...packet, messageId: 7 };
    expect(refused.includes(copy)).toBe(true); // aedes' Packet copies keep the buffer
    expect(refused.includes({ payload: Buffer.from(payload) })).toBe(false); // same bytes, another message
    expect(refused.includes({ payload: payload.toString() })).toBe(false);
    expect(refused.includes({})).toBe(false);
  });
});
