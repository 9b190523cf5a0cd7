import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const HAVE_MOSQUITTO = existsSync('/usr/bin/mosquitto_pub');
if (!HAVE_MOSQUITTO) console.warn('[reported version across an edge wipe] SKIPPED: mosquitto-clients not installed (apt-get install -y mosquitto-clients)');

type TwinView = { reported: Record<string, unknown>; version: { desired: number; reported: number } };
type EdgeDevices = { mqtt: { devices: { name: string; reportedVersion: number }[] } };

/**
 * Issue 19 end to end: a wiped edge database starts the device's reported version over at 1
 * while the cloud holds more. The cloud's `version.reported` must still move forward when the
 * value changes, or anything ordering by it misses the change.
 */
describe.skipIf(!HAVE_MOSQUITTO)('reported twin version across a wiped edge database', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let mqttPort: number;
  let password: string;

  const twin = async () => (await api(cloud).call<TwinView>('GET', '/devices/thermo-1/twin')).body;
  const report = (temperature: number) =>
    run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort), '-V', 'mqttv311', '-u', 'thermo-1', '-P', password, '-i', 'thermo-1-pub', '-q', '1',
      '-t', 'ef/devices/thermo-1/twin/reported', '-m', JSON.stringify({ properties: { temperature } })]);
  const edgeDevice = async () => ((await fleet.edgeStatus(edge)) as unknown as EdgeDevices).mqtt.devices.find((d) => d.name === 'thermo-1');

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    mqttPort = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'thermostat' }, spec: { protocol: 'virtual', properties: [
      { name: 'temperature', type: 'float', accessMode: 'ReadOnly', minimum: -40, maximum: 125 },
    ] } })).status).toBe(201);
    const r = await api(cloud).call<{ credentials: { password: string } }>('POST', '/devices', { metadata: { name: 'thermo-1' }, spec: { model: 'thermostat', nodeName: 'edge-1', protocol: { name: 'virtual' } } });
    expect(r.status).toBe(201);
    password = r.body.credentials.password;
    await waitFor('device on the edge', async () => (await edgeDevice()) !== undefined);
  });
  afterAll(async () => { await fleet.cleanup(); });

  it('after the wipe a changed value comes with a higher cloud version', async () => {
    for (const temperature of [20, 21, 22]) {
      await report(temperature);
      await waitFor(`cloud sees ${temperature}`, async () => (await twin()).reported.temperature === temperature);
    }
    const before = await twin();
    expect(before.version.reported).toBeGreaterThanOrEqual(3);

    await edge.proc.stop();
    for (const f of ['edge.db', 'edge.db-wal', 'edge.db-shm']) rmSync(join(edge.dataDir, f), { force: true });
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, dataDir: edge.dataDir, extra: ['--mqtt-port', String(mqttPort)] });
    await waitFor('device back on the wiped edge', async () => (await edgeDevice()) !== undefined, 30_000);

    await report(23.5);
    // The edge's own count started over: that is the case the cloud has to order past.
    const onEdge = await waitFor('edge took the report', async () => {
      const d = await edgeDevice();
      return d && d.reportedVersion > 0 ? d : undefined;
    });
    expect(onEdge.reportedVersion).toBeLessThan(before.version.reported);
    const after = await waitFor('cloud sees 23.5', async () => {
      const t = await twin();
      return t.reported.temperature === 23.5 ? t : undefined;
    }, 30_000);
    expect(after.version.reported).toBeGreaterThan(before.version.reported);

    // A repeat of the value is no change; the next change moves the version again.
    await report(23.5);
    await report(24);
    const later = await waitFor('cloud sees 24', async () => {
      const t = await twin();
      return t.reported.temperature === 24 ? t : undefined;
    }, 30_000);
    expect(later.version.reported).toBeGreaterThan(after.version.reported);
  });
});
