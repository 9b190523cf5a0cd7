import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device, TwinView } from '../../../protocol/index.js';
import { openSqliteTelemetry, type SqliteTelemetry } from '../../telemetry/sqliteTelemetry.js';
import { thermostatDevice, thermostatModel } from '../../../test/helpers/cloudcore/deviceFixtures.js';
import { READONLY_TOKEN, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

async function reportTwin(api: TestApi, name: string, reported: Device['status']): Promise<void> {
  const device = (await api.store.get('Device', name))!;
  await api.store.update({ ...device, status: reported });
}

describe('device twin API', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
    await api.call('POST', '/devicemodels', { body: thermostatModel() });
  });
  afterAll(async () => { await api.close(); });

  it('shows desired, reported, delta and versions, with the desired version as ETag', async () => {
    await api.call('POST', '/devices', { body: thermostatDevice('tw-1', { desired: { setpoint: 21, mode: 'eco' } }) });
    const fresh = await api.call('GET', '/devices/tw-1/twin', { token: READONLY_TOKEN });
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('etag')).toBe('"1"');
    expect(fresh.body).toMatchObject({
      desired: { setpoint: 21, mode: 'eco' }, reported: {}, delta: { setpoint: 21, mode: 'eco' },
      version: { desired: 1, reported: 0 }, metadata: { reported: {} },
    });

    const reportedAt = '2025-01-01T00:00:00.000Z';
    await reportTwin(api, 'tw-1', {
      online: true, lastSeen: reportedAt,
      twin: { reported: { setpoint: 21, temperature: 19.5, mode: 'comfort' }, version: 7, metadata: { setpoint: { updatedAt: reportedAt } } },
    });
    const twin = (await api.call('GET', '/devices/tw-1/twin')).body as TwinView;
    expect(twin).toEqual({
      desired: { setpoint: 21, mode: 'eco' },
      reported: { setpoint: 21, temperature: 19.5, mode: 'comfort' },
      delta: { mode: 'eco' },
      version: { desired: 1, reported: 7 },
      metadata: { desired: { setpoint: { updatedAt: expect.any(String) }, mode: { updatedAt: expect.any(String) } }, reported: { setpoint: { updatedAt: reportedAt } } },
    });
    expect((await api.call('GET', '/devices/nobody/twin')).status).toBe(404);
  });

  it('merge-patches desired: sets, deletes with null, bumps the version and times only touched properties', async () => {
    await api.call('POST', '/devices', { body: thermostatDevice('tw-2', { desired: { setpoint: 21, mode: 'eco' } }) });
    const before = (await api.store.get('Device', 'tw-2'))!;
    const status: Device['status'] = { online: false, lastSeen: null, twin: { reported: { temperature: 18 }, version: 2, metadata: {} } };
    await reportTwin(api, 'tw-2', status);

    const res = await api.call('PATCH', '/devices/tw-2/twin', {
      body: { setpoint: 22.5, mode: null, power: true },
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"2"');
    const twin = res.body as TwinView;
    expect(twin.desired).toEqual({ setpoint: 22.5, power: true });
    expect(twin.version).toEqual({ desired: 2, reported: 2 });
    expect(twin.delta).toEqual({ setpoint: 22.5, power: true });
    expect(Object.keys(twin.metadata.desired).sort()).toEqual(['power', 'setpoint']);
    expect(twin.metadata.desired.setpoint!.updatedAt).not.toBe(before.spec.desiredMetadata.setpoint!.updatedAt);

    const stored = (await api.store.get('Device', 'tw-2'))!;
    expect(stored.spec).toMatchObject({ desired: { setpoint: 22.5, power: true }, desiredVersion: 2, credentialHash: before.spec.credentialHash });
    expect(stored.status).toEqual(status);

    // A patch that changes nothing writes nothing and keeps the version.
    const revision = await api.store.revision();
    const same = await api.call('PATCH', '/devices/tw-2/twin', { body: { setpoint: 22.5, mode: null } });
    expect(same.status).toBe(200);
    expect((same.body as TwinView).version.desired).toBe(2);
    expect(await api.store.revision()).toBe(revision);
  });

  it('honours If-Match: the current version applies, a stale one is a 409 that changes nothing', async () => {
    await api.call('POST', '/devices', { body: thermostatDevice('tw-3', { desired: {} }) });
    const etag = (await api.call('GET', '/devices/tw-3/twin')).headers.get('etag')!;
    expect(etag).toBe('"0"');
    const ok = await api.call('PATCH', '/devices/tw-3/twin', { body: { setpoint: 10 }, headers: { 'if-match': etag } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).toBe('"1"');
    const bare = await api.call('PATCH', '/devices/tw-3/twin', { body: { setpoint: 11 }, headers: { 'if-match': '1' } });
    expect(bare.status).toBe(200);

    const revision = await api.store.revision();
    const stale = await api.call('PATCH', '/devices/tw-3/twin', { body: { setpoint: 12 }, headers: { 'if-match': '"1"' } });
    expect(stale.status).toBe(409);
    expect(stale.body).toEqual({ error: expect.stringContaining('desired version 2, not 1'), code: 'EF_CONFLICT' });
    expect(await api.store.revision()).toBe(revision);
    expect((await api.store.get('Device', 'tw-3'))!.spec.desired).toEqual({ setpoint: 11 });

    // A status write in between does not make a current If-Match stale.
    await reportTwin(api, 'tw-3', { online: true, lastSeen: null, twin: { reported: { setpoint: 11 }, version: 1, metadata: {} } });
    expect((await api.call('PATCH', '/devices/tw-3/twin', { body: { setpoint: 12 }, headers: { 'if-match': '2' } })).status).toBe(200);
    expect((await api.call('PATCH', '/devices/tw-3/twin', { body: { setpoint: 13 }, headers: { 'if-match': '*' } })).status).toBe(200);
    const bad = await api.call('PATCH', '/devices/tw-3/twin', { body: { setpoint: 14 }, headers: { 'if-match': 'yesterday' } });
    expect(bad).toMatchObject({ status: 400, body: { field: 'If-Match' } });
  });

  it.each([
    ['a ReadOnly property', { temperature: 20 }, 'temperature', 'ReadOnly'],
    ['a value above maximum', { setpoint: 40 }, 'setpoint', '≤ 35'],
    ['a value below minimum', { fanSteps: -1 }, 'fanSteps', '≥ 0'],
    ['a fraction for an int', { fanSteps: 2.5 }, 'fanSteps', 'integer'],
    ['a string for a float', { setpoint: 'warm' }, 'setpoint', 'must be a number'],
    ['a number for a boolean', { power: 1 }, 'power', 'true or false'],
    ['an unknown property', { colour: 'red' }, 'colour', 'unknown property'],
    ['deleting an unknown property', { colour: null }, 'colour', 'unknown property'],
    ['an object value', { mode: { deep: true } }, 'mode', ''],
    ['a bad property name', { '9x': 1 }, '9x', 'must start with a letter'],
  ])('refuses a patch with %s naming %s, storing nothing', async (_case, body, field, words) => {
    await api.call('POST', '/devices', { body: thermostatDevice('tw-bad', { desired: { setpoint: 20 } }) });
    const revision = await api.store.revision();
    const res = await api.call('PATCH', '/devices/tw-bad/twin', { body: { setpoint: 25, ...body } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ field, error: expect.stringContaining(words) });
    expect(await api.store.revision()).toBe(revision);
    expect((await api.store.get('Device', 'tw-bad'))!.spec).toMatchObject({ desired: { setpoint: 20 }, desiredVersion: 1 });
  });

  it('refuses patches that are not JSON objects, readonly writers, and absent devices', async () => {
    await api.call('POST', '/devices', { body: thermostatDevice('tw-4') });
    expect((await api.call('PATCH', '/devices/tw-4/twin', { body: [1] })).status).toBe(400);
    expect((await api.call('PATCH', '/devices/tw-4/twin', { rawBody: 'setpoint=1', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await api.call('PATCH', '/devices/tw-4/twin', { body: { setpoint: 9 }, token: READONLY_TOKEN })).status).toBe(403);
    expect((await api.call('PATCH', '/devices/nobody/twin', { body: { setpoint: 9 } })).status).toBe(404);
  });

  it('answers 503 for telemetry when no telemetry store is configured', async () => {
    const res = await api.call('GET', '/devices/tw-4/telemetry');
    expect(res).toMatchObject({ status: 503, body: { error: expect.stringContaining('telemetry') } });
  });
});

describe('device telemetry API', () => {
  let api: TestApi;
  let telemetry: SqliteTelemetry;
  let dir: string;
  const T0 = Date.now() - 60_000;
  const at = (s: number) => new Date(T0 + s * 1000).toISOString();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgefleet-telemetry-api-'));
    telemetry = await openSqliteTelemetry({ path: join(dir, 'telemetry.db'), maxSamplesPerDevice: 50 });
    api = await startTestApi({ telemetry });
    await api.call('POST', '/devicemodels', { body: thermostatModel() });
    await api.call('POST', '/devices', { body: thermostatDevice('tel-1') });
    await api.call('POST', '/devices', { body: thermostatDevice('tel-2') });
  });
  afterAll(async () => {
    await api.close();
    await telemetry.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers samples oldest first with since and limit, without bumping the store revision', async () => {
    const revision = await api.store.revision();
    await telemetry.append('tel-1', Array.from({ length: 60 }, (_, i) => ({ t: at(i), values: { temperature: i } })));
    await telemetry.append('tel-2', [{ t: at(1), values: { temperature: -1 } }]);
    expect(await api.store.revision()).toBe(revision);

    const all = await api.call('GET', '/devices/tel-1/telemetry', { token: READONLY_TOKEN });
    expect(all.status).toBe(200);
    const items = (all.body as { items: Array<{ t: string; values: { temperature: number } }> }).items;
    // Bounded at 50 per device: the oldest 10 went.
    expect(items.map((s) => s.values.temperature)).toEqual(Array.from({ length: 50 }, (_, i) => i + 10));

    const page = await api.call('GET', `/devices/tel-1/telemetry?since=${encodeURIComponent(at(20))}&limit=3`);
    expect((page.body as { items: unknown[] }).items).toEqual([
      { t: at(21), values: { temperature: 21 } }, { t: at(22), values: { temperature: 22 } }, { t: at(23), values: { temperature: 23 } },
    ]);
    const latest = await api.call('GET', '/devices/tel-1/telemetry?limit=2');
    expect((latest.body as typeof all.body & { items: Array<{ values: { temperature: number } }> }).items.map((s) => s.values.temperature)).toEqual([58, 59]);
  });

  it.each([
    ['limit=0', 'limit'], ['limit=10001', 'limit'], ['limit=abc', 'limit'], ['since=yesterday', 'since'], ['until=now', 'until'],
  ])('refuses ?%s naming %s', async (query, field) => {
    const res = await api.call('GET', `/devices/tel-1/telemetry?${query}`);
    expect(res).toMatchObject({ status: 400, body: { field } });
  });

  it('404s for an absent device and drops telemetry with the device', async () => {
    expect((await api.call('GET', '/devices/nobody/telemetry')).status).toBe(404);
    expect(telemetry.count('tel-2')).toBe(1);
    expect((await api.call('DELETE', '/devices/tel-2')).status).toBe(200);
    expect(telemetry.count('tel-2')).toBe(0);
  });
});
