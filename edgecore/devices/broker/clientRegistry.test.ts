import type { Client } from 'aedes';
import { describe, expect, it } from 'vitest';
import { ClientRegistry } from './clientRegistry.js';

// The registry only keys on the client objects' identity; nothing of aedes' Client is called.
const client = (id: string) => ({ id }) as unknown as Client;
const known = () => true;

describe('ClientRegistry presence', () => {
  it('a device is online while its own connection or a mapper reaching it holds, and goes offline with the last of them', () => {
    const registry = new ClientRegistry();
    const own = client('meter-1');
    const mapper = client('mapper-modbus-edge-1');
    registry.authenticated(own, { kind: 'device', device: 'meter-1' });
    registry.authenticated(mapper, { kind: 'mapper', username: 'modbus-mapper', protocol: 'modbus' });
    expect(registry.ready(mapper, known)).toBeNull();
    expect(registry.mapperSays(mapper, 'meter-1', true)).toBe(true);
    expect(registry.mapperSays(mapper, 'meter-1', true)).toBeNull();
    expect(registry.ready(own, known)).toBeNull(); // already online
    expect(registry.mapperSays(mapper, 'meter-1', false)).toBeNull(); // its own connection holds
    expect(registry.mapperSays(mapper, 'meter-1', true)).toBeNull();
    expect(registry.gone(own)).toEqual([]);
    expect(registry.gone(mapper)).toEqual(['meter-1']);
    expect(registry.isOnline('meter-1')).toBe(false);
  });

  it('a mapper that is not connected (yet, or any more) has no say; a forgotten device loses its mappers\' word', () => {
    const registry = new ClientRegistry();
    const mapper = client('m');
    registry.authenticated(mapper, { kind: 'mapper', username: 'm', protocol: 'modbus' });
    expect(registry.mapperSays(mapper, 'meter-1', true)).toBeNull();
    registry.ready(mapper, known);
    expect(registry.mapperSays(mapper, 'meter-1', true)).toBe(true);
    expect(registry.mapperSays(mapper, 'meter-2', true)).toBe(true);
    expect(registry.forgetMapperState('meter-1')).toBe(true);
    expect(registry.forgetMapperState('meter-1')).toBe(false);
    expect(registry.onlineDevices()).toEqual(['meter-2']);
    expect(registry.gone(mapper)).toEqual(['meter-2']);
    expect(registry.mapperSays(mapper, 'meter-2', true)).toBeNull();
  });

  it('what a mapper says before it is ready is held, newest per device, and handed over once', () => {
    const registry = new ClientRegistry();
    const mapper = client('m');
    registry.authenticated(mapper, { kind: 'mapper', username: 'm', protocol: 'modbus' });
    expect(registry.isLive(mapper)).toBe(false);
    registry.holdWord(mapper, 'meter-1', { reachable: false, error: 'timeout' });
    registry.holdWord(mapper, 'meter-1', { reachable: true });
    registry.holdWord(mapper, 'meter-2', { reachable: false, error: 'EHOSTUNREACH' });
    registry.ready(mapper, known);
    expect(registry.isLive(mapper)).toBe(true);
    expect(registry.takeHeldWords(mapper)).toEqual([['meter-1', { reachable: true }], ['meter-2', { reachable: false, error: 'EHOSTUNREACH' }]]);
    expect(registry.takeHeldWords(mapper)).toEqual([]);
  });

  it('a mapper\'s reasons for unreachable devices are its own: replaced by a later word, taken back when it goes', () => {
    const registry = new ClientRegistry();
    const [first, second] = [client('a'), client('b')];
    for (const c of [first, second]) {
      registry.authenticated(c, { kind: 'mapper', username: 'm', protocol: 'modbus' });
      registry.ready(c, known);
    }
    registry.mapperSays(first, 'meter-1', false, 'timeout');
    registry.mapperSays(first, 'meter-2', false, 'ECONNREFUSED');
    registry.mapperSays(second, 'meter-2', false, 'EHOSTUNREACH');
    expect(registry.mapperError('meter-1')).toBe('timeout');
    expect(registry.mapperError('meter-2')).toBe('EHOSTUNREACH');
    expect(registry.dropMapperErrors(first)).toEqual(['meter-1']);
    expect(registry.mapperError('meter-1')).toBeUndefined();
    expect(registry.mapperError('meter-2')).toBe('EHOSTUNREACH');
    registry.mapperSays(second, 'meter-2', true);
    expect(registry.mapperError('meter-2')).toBeUndefined();
  });
});
