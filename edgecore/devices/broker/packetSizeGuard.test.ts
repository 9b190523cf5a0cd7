import { generate } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { PacketSizeGuard } from './packetSizeGuard.js';

const limits = { connectMaxBytes: 1024, maxBytes: 4096 };
const connect = generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'pump-1', clean: true, keepalive: 30, username: 'pump-1', password: Buffer.from('pw') });
const publish = (bytes: number) => generate({ cmd: 'publish', topic: 'ef/devices/pump-1/telemetry', payload: Buffer.alloc(bytes), qos: 0, retain: false, dup: false });

describe('PacketSizeGuard', () => {
  it('passes real packets, whole or split at every byte', () => {
    const stream = Buffer.concat([connect, publish(3000), publish(0), generate({ cmd: 'pingreq' })]);
    expect(new PacketSizeGuard(limits).feed(stream)).toEqual({ ok: true });
    const split = new PacketSizeGuard(limits);
    for (let i = 0; i < stream.length; i++) expect(split.feed(stream.subarray(i, i + 1))).toEqual({ ok: true });
  });

  it('refuses a first packet over the CONNECT limit from its header alone', () => {
    // CONNECT announcing 256 MB: 0x10 then the varint of 268_435_455.
    const verdict = new PacketSizeGuard(limits).feed(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
    expect(verdict).toEqual({ ok: false, announced: 268_435_460, reason: 'first packet announces 268435460 bytes; at most 1024 are accepted' });
  });

  it('refuses a later packet over the packet limit, and the refusal sticks', () => {
    const guard = new PacketSizeGuard(limits);
    expect(guard.feed(connect).ok).toBe(true);
    const big = publish(5000);
    expect(guard.feed(big.subarray(0, 3))).toMatchObject({ ok: false, reason: expect.stringMatching(/^packet announces \d+ bytes; at most 4096/) });
    expect(guard.feed(Buffer.from([0xc0, 0x00])).ok).toBe(false);
  });

  it('refuses a remaining length of more than four bytes', () => {
    expect(new PacketSizeGuard(limits).feed(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x01]))).toEqual({ ok: false, reason: 'malformed remaining length (more than 4 bytes)' });
  });
});
