import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/helpers/wait.js';
import { ModelCopyController } from '../../controllers/modelCopy.js';
import { DeviceModelSchema, DeviceSchema, type Device } from '../../../protocol/index.js';
import { verifyDevicePassword } from '../rules/deviceCredentials.js';
import { thermostatDevice, thermostatModel } from '../../../test/helpers/cloudcore/deviceFixtures.js';
import { NdjsonReader, READONLY_TOKEN, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('device models API', () => {
  let api: TestApi;
  beforeAll(async () => { api = await startTestApi(); });
  afterAll(async () => { await api.close(); });

  it('creates, lists, reads, replaces and deletes a model', async () => {
    const created = await api.call('POST', '/devicemodels', { body: thermostatModel('m-crud') });
    expect(created.status).toBe(201);
    const model = DeviceModelSchema.parse(created.body);
    expect(model.metadata).toMatchObject({ name: 'm-crud', generation: 1, labels: { vendor: 'acme' } });
    expect(model.spec.properties[2]).toEqual({ name: 'mode', type: 'string', accessMode: 'ReadWrite' });

    const { kind: _kind, ...withoutKind } = thermostatModel('m-nokind');
    expect((await api.call('POST', '/devicemodels', { body: withoutKind })).status).toBe(201);
    const list = await api.call('GET', '/devicemodels', { token: READONLY_TOKEN });
    expect((list.body as { items: Array<{ metadata: { name: string } }> }).items.map((m) => m.metadata.name)).toEqual(['m-crud', 'm-nokind']);
    expect((await api.call('GET', '/devicemodels?labelSelector=vendor%3Dother')).body).toMatchObject({ items: [] });

    const replaced = await api.call('PUT', '/devicemodels/m-crud', { body: thermostatModel('m-crud', [{ name: 'humidity', type: 'int' }]) });
    expect(replaced.status).toBe(200);
    expect(DeviceModelSchema.parse(replaced.body).metadata.generation).toBe(2);
    expect((await api.call('GET', '/devicemodels/m-crud')).body).toMatchObject({ spec: { properties: expect.arrayContaining([expect.objectContaining({ name: 'humidity', accessMode: 'ReadOnly' })]) } });

    expect((await api.call('DELETE', '/devicemodels/m-crud')).status).toBe(200);
    expect((await api.call('GET', '/devicemodels/m-crud')).status).toBe(404);
    expect((await api.call('POST', '/devicemodels', { body: thermostatModel('m-nokind') })).status).toBe(409);
    expect((await api.call('POST', '/devicemodels', { body: thermostatModel('m-ro') , token: READONLY_TOKEN })).status).toBe(403);
  });

  it.each([
    ['unknown type', thermostatModel('bad', [{ name: 'x', type: 'decimal' }]), 'spec.properties.5.type', ''],
    ['bad property name', thermostatModel('bad', [{ name: '9lives', type: 'int' }]), 'spec.properties.5.name', 'must start with a letter'],
    ['minimum above maximum', thermostatModel('bad', [{ name: 'x', type: 'int', minimum: 5, maximum: 1 }]), 'spec.properties.5.minimum', 'must not exceed'],
    ['duplicate property', thermostatModel('bad', [{ name: 'mode', type: 'string' }]), 'spec.properties', 'unique'],
    ['unknown field', { ...thermostatModel('bad'), extra: 1 }, 'extra', 'unknown field'],
    ['wrong kind', { ...thermostatModel('bad'), kind: 'Device' }, 'kind', ''],
  ])('refuses a model with %s, naming %s, and stores nothing', async (_case, body, field, words) => {
    const before = await api.store.revision();
    const res = await api.call('POST', '/devicemodels', { body });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: expect.stringMatching(new RegExp(`^${escapeRegExp(field)}: .*${escapeRegExp(words)}`)), field, code: 'EF_INVALID' });
    expect(await api.store.revision()).toBe(before);
  });
});

describe('devices API', () => {
  let api: TestApi;
  /** Copies replaced models into their devices, as in cloudcore. */
  let modelCopy: ModelCopyController;
  beforeAll(async () => {
    api = await startTestApi();
    modelCopy = new ModelCopyController(api.store, pino({ level: 'silent' }));
    await modelCopy.start();
    expect((await api.call('POST', '/devicemodels', { body: thermostatModel() })).status).toBe(201);
  });
  afterAll(async () => { await modelCopy.stop(); await api.close(); });

  it('creates a device with its model copied in, a desired version, and credentials shown once', async () => {
    const res = await api.call('POST', '/devices', { body: thermostatDevice('therm-1') });
    expect(res.status).toBe(201);
    const body = res.body as Record<string, unknown> & { credentials: { username: string; password: string } };
    expect(body.credentials.username).toBe('therm-1');
    expect(body.credentials.password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const { credentials: _c, ...deviceBody } = body;
    const device = DeviceSchema.parse(deviceBody);
    expect(device.spec).toMatchObject({ model: 'thermostat', nodeName: 'edge-1', desired: { setpoint: 21 }, desiredVersion: 1 });
    expect(Object.keys(device.spec.desiredMetadata)).toEqual(['setpoint']);
    expect(device.spec.modelSpec?.properties.map((p) => p.name)).toEqual(['temperature', 'setpoint', 'mode', 'power', 'fanSteps']);
    expect(device.spec.properties[0]).toEqual({ name: 'temperature', visitor: { register: 0, scale: 0.1 }, collectCycleMs: 1000, reportCycleMs: 1000 });
    expect(JSON.stringify(body)).not.toContain('credentialHash');

    // Stored: only the hash, and it matches the password that was shown.
    const stored = await api.store.get('Device', 'therm-1');
    expect(stored?.spec.credentialHash).toMatch(/^scrypt\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await verifyDevicePassword(body.credentials.password, stored!.spec.credentialHash!)).toBe(true);
    expect(JSON.stringify(stored)).not.toContain(body.credentials.password);

    // Never again: not on get, list, replace, watch or delete.
    const answers = [
      await api.call('GET', '/devices/therm-1'),
      await api.call('GET', '/devices'),
      await api.call('GET', '/devices/therm-1', { token: READONLY_TOKEN }),
      await api.call('PUT', '/devices/therm-1', { body: thermostatDevice('therm-1') }),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(JSON.stringify(answer.body)).not.toMatch(/credentialHash|credentials|scrypt/);
    }
    const controller = new AbortController();
    const watch = new NdjsonReader(await api.stream('/devices?watch=true', controller.signal));
    const first = await watch.next();
    controller.abort();
    expect(first).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'therm-1' } } });
    expect(JSON.stringify(first)).not.toMatch(/credentialHash|scrypt/);
  });

  it('rotates credentials: a new password once, the old one stops matching', async () => {
    const created = await api.call('POST', '/devices', { body: thermostatDevice('rot-1') });
    const first = (created.body as { credentials: { password: string } }).credentials.password;
    const before = (await api.store.get('Device', 'rot-1'))!;

    expect((await api.call('POST', '/devices/rot-1/credentials', { token: READONLY_TOKEN })).status).toBe(403);
    const rotated = await api.call('POST', '/devices/rot-1/credentials');
    expect(rotated.status).toBe(200);
    const second = rotated.body as { username: string; password: string };
    expect(second).toEqual({ username: 'rot-1', password: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/) });
    expect(second.password).not.toBe(first);

    const after = (await api.store.get('Device', 'rot-1'))!;
    expect(await verifyDevicePassword(second.password, after.spec.credentialHash!)).toBe(true);
    expect(await verifyDevicePassword(first, after.spec.credentialHash!)).toBe(false);
    // Rotating is not a desired change.
    expect(after.spec.desiredVersion).toBe(before.spec.desiredVersion);
    expect((await api.call('POST', '/devices/nobody/credentials')).status).toBe(404);
  });

  it('replaces a device keeping status, hash and a monotonic desired version', async () => {
    await api.call('POST', '/devices', { body: thermostatDevice('rep-1', { desired: { setpoint: 20, mode: 'eco' } }) });
    const stored = (await api.store.get('Device', 'rep-1'))!;
    const status: Device['status'] = { online: true, lastSeen: '2025-01-01T00:00:00Z', twin: { reported: { temperature: 19.5 }, version: 3, metadata: {} } };
    await api.store.update({ ...stored, status });
    const hash = stored.spec.credentialHash;
    const setpointTime = stored.spec.desiredMetadata.setpoint!.updatedAt;

    // Same desired: version and timestamps stay.
    const same = DeviceSchema.parse((await api.call('PUT', '/devices/rep-1', { body: thermostatDevice('rep-1', { desired: { mode: 'eco', setpoint: 20 }, node: 'edge-2' }) })).body);
    expect(same.spec).toMatchObject({ nodeName: 'edge-2', desiredVersion: 1 });
    // Changed: version +1, only changed properties get a new time, removed ones lose theirs.
    await new Promise((r) => setTimeout(r, 5));
    const changed = DeviceSchema.parse((await api.call('PUT', '/devices/rep-1', { body: thermostatDevice('rep-1', { desired: { setpoint: 20, power: true } }) })).body);
    expect(changed.spec.desiredVersion).toBe(2);
    expect(changed.spec.desired).toEqual({ setpoint: 20, power: true });
    expect(changed.spec.desiredMetadata.setpoint!.updatedAt).toBe(setpointTime);
    expect(changed.spec.desiredMetadata.power!.updatedAt).not.toBe(setpointTime);
    expect(changed.spec.desiredMetadata.mode).toBeUndefined();
    expect(changed.status).toEqual(status);
    expect((await api.store.get('Device', 'rep-1'))!.spec.credentialHash).toBe(hash);

    // A stale client resourceVersion is a 409 and changes nothing.
    const stale = thermostatDevice('rep-1', { desired: {} });
    const res = await api.call('PUT', '/devices/rep-1', { body: { ...stale, metadata: { ...stale.metadata, resourceVersion: 1 } } });
    expect(res.status).toBe(409);
    expect((await api.store.get('Device', 'rep-1'))!.spec.desired).toEqual({ setpoint: 20, power: true });
    expect((await api.call('PUT', '/devices/absent', { body: thermostatDevice('absent') })).status).toBe(404);
  });

  it.each([
    ['a model that does not exist', thermostatDevice('bad', { model: 'nope' }), 'spec.model', 'device model "nope" not found'],
    ['a property the model lacks', { ...thermostatDevice('bad'), spec: { ...thermostatDevice('bad').spec, properties: [{ name: 'voltage' }] } }, 'spec.properties.0.name', 'unknown property "voltage"'],
    ['a property listed twice', { ...thermostatDevice('bad'), spec: { ...thermostatDevice('bad').spec, properties: [{ name: 'mode' }, { name: 'mode' }] } }, 'spec.properties.1.name', 'more than once'],
    ['a ReadOnly desired property', thermostatDevice('bad', { desired: { temperature: 20 } }), 'spec.desired.temperature', 'ReadOnly'],
    ['a desired value out of range', thermostatDevice('bad', { desired: { setpoint: 99 } }), 'spec.desired.setpoint', '≤ 35'],
    ['a desired value of the wrong type', thermostatDevice('bad', { desired: { fanSteps: 1.5 } }), 'spec.desired.fanSteps', 'integer'],
    ['an unknown desired property', thermostatDevice('bad', { desired: { colour: 'red' } }), 'spec.desired.colour', 'unknown property'],
    ['a desired object value', thermostatDevice('bad', { desired: { mode: { a: 1 } } }), 'spec.desired.mode', ''],
    ['a server-owned field', { ...thermostatDevice('bad'), spec: { ...thermostatDevice('bad').spec, credentialHash: 'scrypt$x$y' } }, 'spec.credentialHash', 'unknown field'],
    ['a bad node name', thermostatDevice('bad', { node: 'Edge_1' }), 'spec.nodeName', 'lowercase'],
    ['no protocol', { ...thermostatDevice('bad'), spec: { model: 'thermostat', nodeName: 'edge-1' } }, 'spec.protocol', 'is required'],
  ])('refuses a device with %s, naming %s, and stores nothing', async (_case, body, field, words) => {
    const before = await api.store.revision();
    const res = await api.call('POST', '/devices', { body });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: expect.stringMatching(new RegExp(`^${escapeRegExp(field)}: .*${escapeRegExp(words)}`)), field, code: 'EF_INVALID' });
    expect(await api.store.revision()).toBe(before);
    await api.call('POST', '/devices', { body: thermostatDevice('put-target') });
    const revision = await api.store.revision();
    const put = await api.call('PUT', '/devices/put-target', { body: { ...body, metadata: { name: 'put-target' } } });
    expect(put.status).toBe(400);
    expect(await api.store.revision()).toBe(revision);
  });

  it('stores a device on a node that does not exist, with a Warning header saying so (none for a known node)', async () => {
    const created = await api.call('POST', '/devices', { body: thermostatDevice('lost-1', { node: 'edge-9' }) });
    expect(created.status).toBe(201);
    expect(created.headers.get('warning')).toBe('299 - "node \\"edge-9\\" does not exist; the device is served once a node of that name joins"');
    const replaced = await api.call('PUT', '/devices/lost-1', { body: thermostatDevice('lost-1', { node: 'edge-9' }) });
    expect(replaced.headers.get('warning')).toContain('node \\"edge-9\\" does not exist');

    expect((await api.call('POST', '/tokens', { body: { node: 'edge-8', ttlSeconds: 60 } })).status).toBe(201);
    const known = await api.call('POST', '/devices', { body: thermostatDevice('found-1', { node: 'edge-8' }) });
    expect(known.status).toBe(201);
    expect(known.headers.get('warning')).toBeNull();
  });

  it('refuses a PUT whose body names another device', async () => {
    const res = await api.call('PUT', '/devices/left', { body: thermostatDevice('right') });
    expect(res).toMatchObject({ status: 400, body: { field: 'metadata.name' } });
  });

  it('lists by node and label selector, and watches', async () => {
    await api.call('POST', '/devices', { body: thermostatDevice('sel-a', { node: 'edge-a', labels: { floor: '1' } }) });
    await api.call('POST', '/devices', { body: thermostatDevice('sel-b', { node: 'edge-a', labels: { floor: '2' } }) });
    await api.call('POST', '/devices', { body: thermostatDevice('sel-c', { node: 'edge-c', labels: { floor: '1' } }) });
    const names = async (query: string) => {
      const res = await api.call('GET', `/devices?${query}`);
      expect(res.status).toBe(200);
      return (res.body as { items: Device[] }).items.map((d) => d.metadata.name);
    };
    expect(await names('node=edge-a')).toEqual(['sel-a', 'sel-b']);
    expect(await names('node=edge-a&labelSelector=floor%3D1')).toEqual(['sel-a']);
    expect(await names('labelSelector=floor%3D1')).toEqual(['sel-a', 'sel-c']);
    expect((await api.call('GET', '/devices?node=Bad_Name')).body).toMatchObject({ field: 'node' });
    expect((await api.call('GET', '/devices?resourceVersion=3')).body).toMatchObject({ field: 'resourceVersion' });

    const controller = new AbortController();
    const watch = new NdjsonReader(await api.stream('/devices?watch=true&node=edge-c', controller.signal));
    expect(await watch.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'sel-c' } } });
    await api.call('POST', '/devices', { body: thermostatDevice('sel-d', { node: 'edge-c' }) });
    expect(await watch.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'sel-d' } } });
    controller.abort();
  });

  it('re-copies a replaced model into its devices and refuses changes that would break one', async () => {
    await api.call('POST', '/devicemodels', { body: thermostatModel('lamp') });
    await api.call('POST', '/devices', { body: thermostatDevice('lamp-1', { model: 'lamp', desired: { power: true } }) });
    await api.call('POST', '/devices', { body: thermostatDevice('other-1') });
    const otherBefore = (await api.store.get('Device', 'other-1'))!.metadata.resourceVersion;

    const widened = await api.call('PUT', '/devicemodels/lamp', { body: thermostatModel('lamp', [{ name: 'brightness', type: 'int', accessMode: 'ReadWrite' }]) });
    expect(widened.status).toBe(200);
    // The copy is the model-copy controller's, a moment after the answer.
    const lamp = await waitFor('the replaced model copied into lamp-1', async () => {
      const device = (await api.store.get('Device', 'lamp-1'))!;
      return device.spec.modelSpec?.properties.some((p) => p.name === 'brightness') ? device : undefined;
    }, 5000, 10);
    expect(lamp.spec.desiredVersion).toBe(1);
    expect((await api.store.get('Device', 'other-1'))!.metadata.resourceVersion).toBe(otherBefore);

    // Dropping "power", which lamp-1 desires, would strand the device: refused, nothing written.
    const before = await api.store.revision();
    const narrowed = thermostatModel('lamp');
    narrowed.spec.properties = narrowed.spec.properties.filter((p) => p.name !== 'power');
    const refused = await api.call('PUT', '/devicemodels/lamp', { body: narrowed });
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({ error: expect.stringMatching(/device "lamp-1" .*spec\.desired\.power/), code: 'EF_CONFLICT' });
    expect(await api.store.revision()).toBe(before);

    const inUse = await api.call('DELETE', '/devicemodels/lamp');
    expect(inUse).toMatchObject({ status: 409, body: { error: expect.stringContaining('lamp-1') } });
    expect((await api.call('DELETE', '/devices/lamp-1')).status).toBe(200);
    expect((await api.call('DELETE', '/devicemodels/lamp')).status).toBe(200);
  });

  it('deletes a device (the answer shows no hash) and then 404s', async () => {
    await api.call('POST', '/devices', { body: thermostatDevice('del-1') });
    const res = await api.call('DELETE', '/devices/del-1');
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.body)).not.toContain('credentialHash');
    expect((await api.call('GET', '/devices/del-1')).status).toBe(404);
    expect((await api.call('DELETE', '/devices/del-1')).status).toBe(404);
    expect((await api.call('DELETE', '/devices/rot-1', { token: READONLY_TOKEN })).status).toBe(403);
  });
});
