import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchDeviceList } from '../../../device-mappers/sdk/deviceList.js';
import { StatusServer } from '../../local/statusServer.js';
import { MapperAccess } from './mapperAccess.js';
import { mapperDevicesRoute } from './mapperRoute.js';
import { HubTestKit, makeDevice } from '../../../test/helpers/devices/deviceHubFixtures.js';

let kit: HubTestKit;
let server: StatusServer | undefined;
beforeEach(() => { kit = new HubTestKit(); });
afterEach(async () => {
  await server?.close();
  server = undefined;
  await kit.cleanup();
});

describe('the mapper device list, edge route to mapper SDK', () => {
  it('lists a device without its model copy so the mapper names it and the missing model, and serves the rest', async () => {
    const { hub } = await kit.startHub();
    const access = new MapperAccess(join(kit.dir, 'mappers'), hub);
    const devices = [makeDevice('meter-1', { protocol: 'modbus' }), makeDevice('meter-2', { protocol: 'modbus', model: null }), makeDevice('lamp-1', { protocol: 'virtual' })];
    server = new StatusServer({ snapshot: () => ({}) });
    let ready: MapperAccess | undefined;
    server.addRoute(mapperDevicesRoute('edge-1', () => ready, () => devices));
    const url = await server.listen('127.0.0.1', 0);
    const password = readFileSync(await access.ensureProtocol('modbus'), 'utf8').trim();

    // Before the broker is up the route is not there: the server's own 404.
    await expect(fetchDeviceList(url, 'modbus', password)).rejects.toThrow(/answered 404/);
    ready = access;
    await expect(fetchDeviceList(url, 'modbus', 'wrong')).rejects.toThrow(/answered 401/);

    const list = await fetchDeviceList(url, 'modbus', password);
    expect(list.node).toBe('edge-1');
    expect(list.devices.map((d) => d.name)).toEqual(['meter-1']);
    expect(list.devices[0]!.model.properties.length).toBeGreaterThan(0);
    expect(list.rejected).toEqual([{ name: 'meter-2', reason: expect.stringContaining('no copy of DeviceModel "thermostat"') }]);
  });
});
