import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { verifyDevicePassword } from '../cloudcore/api/rules/deviceCredentials.js';
import { thermostatDevice, thermostatModel } from '../test/helpers/cloudcore/deviceFixtures.js';
import { ADMIN_TOKEN, READONLY_TOKEN, startTestApi, type TestApi } from '../test/helpers/cloudcore/testServer.js';
import type { Device } from '../protocol/index.js';
import { runCli } from '../test/helpers/edgectl/runCli.js';

/** edgectl against the real cloudcore API (SQLite store in a temp dir) over real HTTP. */

const NOW = new Date('2025-01-01T12:00:00Z');

let api: TestApi;
let dir: string;

const cli = (args: string[], token = ADMIN_TOKEN) => runCli(args, { origin: api.origin, token, homeDir: dir, now: NOW });

function file(name: string, docs: unknown[]): string {
  const path = join(dir, name);
  writeFileSync(path, docs.map((d) => YAML.stringify(d)).join('---\n'));
  return path;
}

const cells = (line: string | undefined) => (line ?? '').trim().split(/\s{2,}/);
const lineStarting = (out: string, start: string) => out.split('\n').find((l) => l.startsWith(start));

async function setStatus(name: string, status: Device['status']): Promise<void> {
  const device = (await api.store.get('Device', name))!;
  await api.store.update({ ...device, status });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgectl-devices-'));
  api = await startTestApi();
  // The fixtures' node exists (a token made it); a device naming a missing node gets a warning.
  expect((await api.call('POST', '/tokens', { body: { node: 'edge-1', ttlSeconds: 600 } })).status).toBe(201);
});

afterAll(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('edgectl apply with devices', () => {
  it('prints cloudcore\'s warning when a device names a node that does not exist, as kubectl prints the API server\'s', async () => {
    await cli(['apply', '-f', file('model-w.yaml', [thermostatModel('thermo-w')])]);
    const applied = await cli(['apply', '-f', file('lost.yaml', [thermostatDevice('lost-2', { node: 'edge-9', model: 'thermo-w' })])]);
    expect(applied.code).toBe(0);
    expect(applied.out).toContain('device/lost-2 created');
    expect(applied.err).toBe('Warning: node "edge-9" does not exist; the device is served once a node of that name joins\n');
    expect((await api.call('DELETE', '/devices/lost-2')).status).toBe(200);
    expect((await api.call('DELETE', '/devicemodels/thermo-w')).status).toBe(200);
  });

  it('creates a model and a device from one file (model first), printing the password once', async () => {
    const appDoc = { kind: 'App', metadata: { name: 'reader' }, spec: { template: { runtime: 'process', command: '/bin/true' } } };
    // The device comes first in the file; apply still creates the model before it.
    const path = file('fleet.yaml', [thermostatDevice('therm-1'), thermostatModel(), appDoc]);
    const first = await cli(['apply', '-f', path]);
    expect(first).toMatchObject({ code: 0, err: '' });
    const lines = first.out.trimEnd().split('\n');
    expect(lines[0]).toBe('devicemodel/thermostat created');
    expect(lines[1]).toBe('device/therm-1 created');
    expect(lines[2]).toBe('  username: therm-1');
    const password = lines[3]!.match(/^ {2}password: (\S+)$/)![1]!;
    expect(lines[4]).toBe('app/reader created');
    const stored = (await api.store.get('Device', 'therm-1'))!;
    expect(await verifyDevicePassword(password, stored.spec.credentialHash!)).toBe(true);

    const again = await cli(['apply', '-f', path]);
    expect(again).toEqual({ code: 0, err: '', out: 'devicemodel/thermostat unchanged\ndevice/therm-1 unchanged\napp/reader unchanged\n' });

    const moved = file('moved.yaml', [thermostatDevice('therm-1', { node: 'edge-2' })]);
    expect((await cli(['apply', '-f', moved])).out).toBe('device/therm-1 configured\n');
    const after = (await api.store.get('Device', 'therm-1'))!;
    expect(after.spec.nodeName).toBe('edge-2');
    expect(after.spec.credentialHash).toBe(stored.spec.credentialHash);
  });

  it('keeps desired values set through the twin when the file has no spec.desired', async () => {
    const withoutDesired = thermostatDevice('therm-keep');
    delete (withoutDesired.spec as { desired?: unknown }).desired;
    const path = file('keep.yaml', [withoutDesired]);
    expect((await cli(['apply', '-f', path])).code).toBe(0);
    expect((await cli(['twin', 'set', 'therm-keep', 'setpoint=25'])).code).toBe(0);
    expect((await cli(['apply', '-f', path])).out).toBe('device/therm-keep unchanged\n');
    expect((await api.store.get('Device', 'therm-keep'))!.spec.desired).toEqual({ setpoint: 25 });
    // A file that does say what it desires wins.
    const explicit = file('explicit.yaml', [thermostatDevice('therm-keep', { desired: { mode: 'eco' } })]);
    expect((await cli(['apply', '-f', explicit])).out).toBe('device/therm-keep configured\n');
    expect((await api.store.get('Device', 'therm-keep'))!.spec.desired).toEqual({ mode: 'eco' });
  });

  it('refuses an invalid document before sending anything, and reports server refusals with the field', async () => {
    const before = await api.store.revision();
    const bad = file('bad.yaml', [thermostatModel('m2'), { ...thermostatDevice('d2'), spec: { ...thermostatDevice('d2').spec, nodeName: 'Bad_Node' } }]);
    const r = await cli(['apply', '-f', bad]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/document 2: field spec\.nodeName/);
    const unknownKind = await cli(['apply', '-f', file('kind.yaml', [{ kind: 'Gadget', metadata: { name: 'x' } }])]);
    expect(unknownKind.err).toMatch(/unsupported kind "Gadget" \(edgectl apply handles kinds App, DeviceModel, Device, Route\)/);
    expect(await api.store.revision()).toBe(before);

    const readOnlyDesired = await cli(['apply', '-f', file('ro.yaml', [thermostatDevice('d3', { desired: { temperature: 1 } })])]);
    expect(readOnlyDesired).toMatchObject({ code: 1, out: '' });
    expect(readOnlyDesired.err).toBe('error: spec.desired.temperature: property "temperature" is ReadOnly (field: spec.desired.temperature)\n');
  });
});

describe('edgectl get devices / device', () => {
  beforeAll(async () => {
    await cli(['apply', '-f', file('list.yaml', [thermostatModel(), thermostatDevice('list-a', { node: 'edge-a', desired: { setpoint: 21, mode: 'eco' } }), thermostatDevice('list-b', { node: 'edge-b' })])]);
    await setStatus('list-a', {
      online: true, lastSeen: '2025-01-01T11:59:00Z',
      twin: { reported: { setpoint: 21, temperature: 19.5, mode: 'comfort' }, version: 4, metadata: { temperature: { updatedAt: '2025-01-01T11:58:00Z' } } },
    });
  });

  it('lists devices with node filter, online state and twin versions', async () => {
    const r = await cli(['get', 'devices', '--node', 'edge-a']);
    expect(r).toMatchObject({ code: 0, err: '' });
    const lines = r.out.trimEnd().split('\n');
    expect(cells(lines[0])).toEqual(['NAME', 'NODE', 'MODEL', 'PROTOCOL', 'ONLINE', 'DESIRED/REPORTED']);
    expect(lines.slice(1).map(cells)).toEqual([['list-a', 'edge-a', 'thermostat', 'modbus', 'yes', '1/4']]);
    // edge-b does not exist (edge-1 does, and its unreported devices read <unknown>).
    const b = await cli(['get', 'devices', '--node', 'edge-b'], READONLY_TOKEN);
    expect(cells(b.out.split('\n')[1])).toEqual(['list-b', 'edge-b', 'thermostat', 'modbus', 'no node', '1/-']);
    expect((await cli(['get', 'devices', '--node', 'nowhere'])).out).toBe('No devices found.\n');
  });

  it('shows one device with its twin as a table, DELTA marking what is pending', async () => {
    const r = await cli(['get', 'device', 'list-a']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/^Online:\s+yes$/m);
    expect(r.out).toMatch(/^Last seen:\s+2025-01-01T11:59:00Z \(1m ago\)$/m);
    expect(r.out).toMatch(/^Reported version:\s+4$/m);
    expect(cells(lineStarting(r.out, 'PROPERTY'))).toEqual(['PROPERTY', 'DESIRED', 'REPORTED', 'DELTA', 'UNIT', 'UPDATED']);
    expect(cells(lineStarting(r.out, 'temperature'))).toEqual(['temperature', '-', '19.5', '°C', '2m ago']);
    expect(cells(lineStarting(r.out, 'mode'))).toEqual(['mode', 'eco', 'comfort', '*', '-', expect.stringMatching(/ago$/)]);
    expect(cells(lineStarting(r.out, 'setpoint'))).toEqual(['setpoint', '21', '21', '°C', expect.stringMatching(/ago$/)]);
    expect(cells(lineStarting(r.out, 'power'))).toEqual(['power', '-', '-', '-', '-']);

    const json = await cli(['get', 'device', 'list-a', '-o', 'json']);
    expect(JSON.parse(json.out)).toMatchObject({ kind: 'Device', spec: { desired: { setpoint: 21 } } });
    expect(json.out).not.toMatch(/credentialHash|scrypt/);
    expect(await cli(['get', 'device', 'nope'])).toEqual({ code: 1, out: '', err: 'error: device "nope" not found\n' });
  });

  it('lists device models', async () => {
    const r = await cli(['get', 'devicemodels']);
    expect(cells(r.out.split('\n')[1])).toEqual(['thermostat', 'modbus', 'temperature,setpoint,mode,power,fanSteps']);
  });
});

describe('edgectl twin set', () => {
  beforeAll(async () => {
    await cli(['apply', '-f', file('twin.yaml', [thermostatModel(), thermostatDevice('tw', { desired: { setpoint: 20, mode: 'eco' } })])]);
  });

  it('parses numbers, booleans and strings, deletes with null, and prints the new version', async () => {
    const r = await cli(['twin', 'set', 'tw', 'setpoint=22.5', 'power=true', 'mode=null', 'fanSteps=3']);
    expect(r).toEqual({ code: 0, err: '', out: 'device/tw desired version 2 (not yet reported: setpoint, power, fanSteps)\n' });
    expect((await api.store.get('Device', 'tw'))!.spec.desired).toEqual({ setpoint: 22.5, power: true, fanSteps: 3 });
    const text = await cli(['twin', 'set', 'tw', 'mode=eco mode', '-o', 'json']);
    expect(JSON.parse(text.out)).toMatchObject({ desired: { mode: 'eco mode' }, version: { desired: 3 } });
  });

  it('honours --if-match and reports refusals naming the property', async () => {
    const stale = await cli(['twin', 'set', 'tw', 'setpoint=10', '--if-match', '1']);
    expect(stale.code).toBe(1);
    expect(stale.err).toMatch(/^error: twin of device "tw" has desired version \d+, not 1/);
    const version = (await api.store.get('Device', 'tw'))!.spec.desiredVersion;
    expect((await cli(['twin', 'set', 'tw', 'setpoint=10', '--if-match', String(version)])).code).toBe(0);

    const before = await api.store.revision();
    const readOnly = await cli(['twin', 'set', 'tw', 'temperature=5']);
    expect(readOnly).toMatchObject({ code: 1, err: 'error: temperature: property "temperature" is ReadOnly (field: temperature)\n' });
    const range = await cli(['twin', 'set', 'tw', 'setpoint=99']);
    expect(range.err).toContain('(field: setpoint)');
    const type = await cli(['twin', 'set', 'tw', 'power=yes']);
    expect(type.err).toContain('must be true or false');
    expect(await api.store.revision()).toBe(before);

    const usage = await cli(['twin', 'set', 'tw', 'novalue']);
    expect(usage).toMatchObject({ code: 1, err: expect.stringContaining('use property=value') });
    const badVersion = await cli(['twin', 'set', 'tw', 'a=1', '--if-match', 'x']);
    expect(badVersion.code).toBe(1);
    expect((await cli(['twin', 'set', 'tw', 'setpoint=11'], READONLY_TOKEN)).code).toBe(1);
  });
});

describe('edgectl device credentials and delete', () => {
  it('rotates the password, prints it once, and the old one stops matching', async () => {
    const created = await cli(['apply', '-f', file('cred.yaml', [thermostatModel(), thermostatDevice('cred-1')])]);
    const oldPassword = created.out.match(/password: (\S+)/)![1]!;
    const r = await cli(['device', 'credentials', 'cred-1']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('shown only now');
    const [userLine, passLine] = r.out.trimEnd().split('\n');
    expect(userLine).toBe('username: cred-1');
    const newPassword = passLine!.replace('password: ', '');
    const hash = (await api.store.get('Device', 'cred-1'))!.spec.credentialHash!;
    expect(await verifyDevicePassword(newPassword, hash)).toBe(true);
    expect(await verifyDevicePassword(oldPassword, hash)).toBe(false);
    expect((await cli(['get', 'device', 'cred-1', '-o', 'yaml'])).out).not.toContain(newPassword);
  });

  it('deletes devices and then their model', async () => {
    await cli(['apply', '-f', file('del.yaml', [thermostatModel('gone-model'), thermostatDevice('gone-1', { model: 'gone-model' })])]);
    const inUse = await cli(['delete', 'devicemodel', 'gone-model']);
    expect(inUse).toMatchObject({ code: 1, err: expect.stringContaining('used by 1 device(s) (gone-1)') });
    expect(await cli(['delete', 'device', 'gone-1'])).toEqual({ code: 0, err: '', out: 'device/gone-1 deleted\n' });
    expect(await cli(['delete', 'devicemodel', 'gone-model'])).toEqual({ code: 0, err: '', out: 'devicemodel/gone-model deleted\n' });
  });
});
