import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

/** Grants with invalid topic filters are refused at the cloud API, naming the entry (protocol/mqttFilters.ts). */
describe('MQTT grants at the cloud API', () => {
  let api: TestApi;
  beforeAll(async () => { api = await startTestApi(); });
  afterAll(async () => { await api.close(); });

  const app = (mqtt: unknown) => ({ metadata: { name: 'alerter' }, spec: { template: { runtime: 'process', command: '/bin/sleep', mqtt } } });

  it('takes a valid grant and keeps it in the app and its template', async () => {
    const grant = { publish: ['apps/alerts/#'], subscribe: ['ef/devices/+/telemetry'] };
    const res = await api.call('POST', '/apps', { body: app(grant) });
    expect(res.status).toBe(201);
    expect((res.body as { spec: { template: { mqtt: unknown } } }).spec.template.mqtt).toEqual(grant);
  });

  it.each([
    ['the desired side of the twin', { subscribe: ['apps/a', 'ef/devices/+/twin/desired'] }, 'spec.template.mqtt.subscribe.1', 'never desired or delta'],
    ['publishing telemetry for a device', { publish: ['ef/devices/t1/telemetry'] }, 'spec.template.mqtt.publish.0', 'only through its twin'],
    ['a "#" not last', { publish: ['apps/#/x'] }, 'spec.template.mqtt.publish.0', '"#" must be a whole level and the last one'],
    ['a $ topic', { subscribe: ['$SYS/#'] }, 'spec.template.mqtt.subscribe.0', '"$" topics'],
    ['an unknown key', { publish: [], read: [] }, 'spec.template.mqtt.read', 'unknown field'],
  ])('refuses a grant with %s, naming the entry', async (_case, grant, field, words) => {
    const before = await api.store.revision();
    for (const [method, path] of [['POST', '/apps'], ['PUT', '/apps/bad-grant']] as const) {
      const res = await api.call(method, path, { body: { ...app(grant), metadata: { name: 'bad-grant' } } });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ field, code: 'EF_INVALID' });
      expect((res.body as { error: string }).error).toContain(words);
    }
    expect(await api.store.revision()).toBe(before);
  });

  it('refuses a device grant outside apps/, naming it', async () => {
    const model = await api.call('POST', '/devicemodels', { body: { metadata: { name: 'plc' }, spec: { protocol: 'mqtt', properties: [{ name: 'level', type: 'float', accessMode: 'ReadOnly' }] } } });
    expect(model.status, JSON.stringify(model.body)).toBe(201);
    const res = await api.call('POST', '/devices', { body: { metadata: { name: 'plc-1' }, spec: { model: 'plc', nodeName: 'edge-1', protocol: { name: 'mqtt' }, mqtt: { subscribe: ['ef/devices/+/telemetry'] } } } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ field: 'spec.mqtt.subscribe.0' });
    const ok = await api.call('POST', '/devices', { body: { metadata: { name: 'plc-1' }, spec: { model: 'plc', nodeName: 'edge-1', protocol: { name: 'mqtt' }, mqtt: { publish: ['apps/plc/out'] } } } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect((ok.body as { spec: { mqtt: unknown } }).spec.mqtt).toEqual({ publish: ['apps/plc/out'], subscribe: [] });
  });
});
