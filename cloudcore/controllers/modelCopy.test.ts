import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceModelSchema, type DeviceModel, type DeviceModelSpec } from '../../protocol/index.js';
import { makeDevice } from '../../test/store/fixtures.js';
import { waitFor } from '../../test/helpers/wait.js';
import { openSqliteStore, type SqliteStore } from '../store/sqliteStore.js';
import { devicesWithStaleModel, ModelCopyController } from './modelCopy.js';

const model = (name: string, properties: string[]): DeviceModel => DeviceModelSchema.parse({
  kind: 'DeviceModel', metadata: { name }, spec: { protocol: 'modbus', properties: properties.map((p) => ({ name: p, type: 'int' })) },
});

describe('devicesWithStaleModel', () => {
  it('picks the devices of the given models whose copy differs, and no others', () => {
    const spec: DeviceModelSpec = model('thermostat', ['a', 'b']).spec;
    const current = { ...makeDevice('current', 'n1'), spec: { ...makeDevice('current', 'n1').spec, modelSpec: structuredClone(spec) } };
    const stale = makeDevice('stale', 'n1');
    const other = { ...makeDevice('other', 'n1'), spec: { ...makeDevice('other', 'n1').spec, model: 'lamp' } };
    expect(devicesWithStaleModel([current, stale, other], new Map([['thermostat', spec]])).map((d) => d.metadata.name)).toEqual(['stale']);
  });
});

describe('ModelCopyController', () => {
  let dir: string;
  let store: SqliteStore;
  let controller: ModelCopyController | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgefleet-modelcopy-'));
    store = await openSqliteStore({ path: join(dir, 'store.db') });
  });
  afterEach(async () => {
    await controller?.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const copyOf = async (device: string) => (await store.get('Device', device))?.spec.modelSpec?.properties.map((p) => p.name).join(',');

  it('at start, copies a model replaced while it was not running', async () => {
    const thermostat = await store.create(model('thermostat', ['a']));
    await store.create({ ...makeDevice('d1', 'n1'), spec: { ...makeDevice('d1', 'n1').spec, modelSpec: { protocol: 'modbus', properties: [] } } });
    controller = new ModelCopyController(store, pino({ level: 'silent' }), 1);
    await controller.start();
    await waitFor('the model copied into d1', async () => (await copyOf('d1')) === 'a', 5000, 10);
    expect((await store.get('DeviceModel', 'thermostat'))?.metadata.resourceVersion).toBe(thermostat.metadata.resourceVersion);
  });

  it('copies a replaced model into its devices only, keeping what others wrote to them', async () => {
    const thermostat = await store.create(model('thermostat', ['a']));
    await store.create(model('lamp', ['on']));
    await store.create({ ...makeDevice('d1', 'n1'), spec: { ...makeDevice('d1', 'n1').spec, modelSpec: thermostat.spec } });
    const lamp = await store.create({ ...makeDevice('l1', 'n1'), spec: { ...makeDevice('l1', 'n1').spec, model: 'lamp', modelSpec: model('lamp', ['on']).spec } });
    controller = new ModelCopyController(store, pino({ level: 'silent' }), 1);
    await controller.start();

    const d1 = (await store.get('Device', 'd1'))!;
    await store.update({ ...d1, metadata: { ...d1.metadata, labels: { floor: '2' } } });
    await store.update({ ...thermostat, spec: model('thermostat', ['a', 'b']).spec });
    await waitFor('the replaced model copied into d1', async () => (await copyOf('d1')) === 'a,b', 5000, 10);
    expect((await store.get('Device', 'd1'))?.metadata.labels).toEqual({ floor: '2' });
    expect((await store.get('Device', 'l1'))?.metadata.resourceVersion).toBe(lamp.metadata.resourceVersion);
  });
});
