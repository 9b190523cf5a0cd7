import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../../protocol/index.js';
import { mapperOnPath } from '../../scripts/mapperOnPath.js';
import { api, Fleet, ROOT, runToEnd, type Cloud } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The device examples the docs hand to a new user (docs/examples/), applied as written with the
 * real edgectl to a real cloudcore and edgecore. The mapper app runs `mapper` from the node's
 * PATH, as on a node where the package is installed (a wrapper here, as `npm start` makes), and
 * the devices it serves show online in the cloud while it reaches them.
 */
describe('docs/examples: devices and their mapper, as a user applies them', () => {
  const fleet = new Fleet();
  let cloud: Cloud;

  const edgectl = (...args: string[]) => runToEnd('edgectl', args, { EF_SERVER: cloud.url, EF_TOKEN: cloud.token });
  const device = async (name: string) => (await api(cloud).call<Device>('GET', `/devices/${name}`)).body;

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1'), env: mapperOnPath(fleet.tempDir(), ROOT) });
  });
  afterAll(() => fleet.cleanup());

  it('devices.yaml creates both models and devices and shows each password once', async () => {
    const applied = await edgectl('apply', '-f', join(ROOT, 'docs', 'examples', 'devices.yaml'));
    expect(applied.code, applied.err).toBe(0);
    for (const line of ['devicemodel/virtual-thermometer created', 'devicemodel/virtual-switch created', 'device/thermo-1 created', 'device/lamp-1 created',
      'username: thermo-1', 'username: lamp-1']) expect(applied.out).toContain(line);
    expect(applied.out.match(/password: \S+/g)).toHaveLength(2);
    expect((await device('lamp-1')).spec.desired).toEqual({ on: true });
  });

  it('virtual-mapper.yaml runs the mapper on the node: lamp-1 follows desired, both devices report and show online', async () => {
    const applied = await edgectl('apply', '-f', join(ROOT, 'docs', 'examples', 'virtual-mapper.yaml'));
    expect(applied.code, applied.err).toBe(0);
    await waitFor('lamp-1 reported on, online', async () => {
      const lamp = await device('lamp-1');
      return lamp.status?.twin.reported.on === true && lamp.status.online;
    }, 30_000);
    await waitFor('thermo-1 reports a temperature, online', async () => {
      const thermo = await device('thermo-1');
      return typeof thermo.status?.twin.reported.temperature === 'number' && thermo.status.online;
    }, 30_000);
    // --telemetry in the example: the samples reach the cloud's telemetry, and edgectl shows them.
    const samples = await waitFor('thermo-1 telemetry in the cloud', async () => {
      const shown = await edgectl('get', 'telemetry', 'thermo-1', '--since', '5m');
      return shown.code === 0 && /^TIME\s+TEMPERATURE\n\S+\s+-?\d/m.test(shown.out) ? shown : undefined;
    }, 30_000);
    expect(samples.err).toBe('');
    const twinSet = await edgectl('twin', 'set', 'lamp-1', 'on=false');
    expect(twinSet.code, twinSet.err).toBe(0);
    await waitFor('lamp-1 reported off', async () => (await device('lamp-1')).status?.twin.reported.on === false, 30_000);
  });

  it('with the mapper app deleted, nothing reaches the devices any more: they show offline', async () => {
    const deleted = await edgectl('delete', 'app', 'virtual-mapper');
    expect(deleted.code, deleted.err).toBe(0);
    await waitFor('both devices offline', async () => !(await device('lamp-1')).status?.online && !(await device('thermo-1')).status?.online, 30_000);
  });
});
