import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MapperAccess } from './mapperAccess.js';
import { HubTestKit, makeDevice } from '../../../test/helpers/devices/deviceHubFixtures.js';

let kit: HubTestKit;
beforeEach(() => { kit = new HubTestKit(); });
afterEach(async () => { await kit.cleanup(); });

describe('MapperAccess', () => {
  it('registers a protocol once, however many callers ask while it runs, and the mapper logs in with its file', async () => {
    const { hub, url } = await kit.startHub();
    // The real hub, with its registrations counted: a second one would carry a new salt, which
    // the hub takes for a changed credential and answers by disconnecting that mapper.
    const registered: string[] = [];
    const access = new MapperAccess(join(kit.dir, 'mappers'), {
      addMapperCredential: (username, hash, protocol) => { registered.push(username); hub.addMapperCredential(username, hash, protocol); },
    });
    const files = await Promise.all([
      access.ensureProtocol('modbus'),
      access.ensureProtocol('modbus'),
      access.ensureFor([makeDevice('meter-1', { protocol: 'modbus' })]).then(() => access.passwordFile('modbus')),
      access.ensureProtocol('modbus'),
    ]);
    expect(new Set(files)).toEqual(new Set([access.passwordFile('modbus')]));
    expect(registered).toEqual(['mapper-modbus']);
    const password = readFileSync(files[0]!, 'utf8').trim();
    const { client } = await kit.connectClient(url, { clientId: 'mapper-modbus-edge-1', username: 'mapper-modbus', password });
    expect(client.connected).toBe(true);
    expect(access.authorized('modbus', `Bearer ${password}`)).toBe(true);
  });

  it('writes a new password file only once the broker knows the password', async () => {
    const { hub, url } = await kit.startHub();
    const access = new MapperAccess(join(kit.dir, 'mappers'), hub);
    const file = access.passwordFile('opcua');
    const registered = access.ensureProtocol('opcua');
    // Hashing takes tens of milliseconds: a file written first would be seen here before the broker has it.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => { if (existsSync(file)) { clearInterval(poll); resolve(); } }, 1);
    });
    const { client } = await kit.connectClient(url, { clientId: 'mapper-opcua-edge-1', username: 'mapper-opcua', password: readFileSync(file, 'utf8').trim() });
    expect(client.connected).toBe(true);
    expect(await registered).toBe(file);
  });
});
