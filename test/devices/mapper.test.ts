import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../../protocol/index.js';
import { api, Fleet, runBin, runToEnd, type Cloud, type Edge, type Proc } from '../helpers/fleet.js';
import { createLamp, lampTwin, switchLamp } from '../helpers/virtualLamp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 4: a real `mapper` process (virtual protocol) reads its device list from a real
 * edgecore, reports through the edge broker to the cloud twin, and applies desired values.
 */
describe('mapper binary with edgecore and cloudcore', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let mapper: Proc;

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    await createLamp(cloud, 'edge-1');
    await waitFor('device on the edge', async () => JSON.stringify(await fleet.edgeStatus(edge)).includes('"lamp"'));
    const ready = edge.proc.lines.find((l) => l.msg === 'edgecore ready')!;
    mapper = runBin('mapper', ['virtual', '--node', 'edge-1', '--edge-url', edge.statusUrl, '--mqtt', String(ready.mqttUrl),
      '--credential-file', join(edge.dataDir, 'mappers', 'virtual.password'), '--refresh-seconds', '1']);
  });
  afterAll(async () => { await mapper?.stop(); await fleet.cleanup(); });

  it('reports the device state to the cloud twin', async () => {
    await waitFor('reported on', async () => typeof (await lampTwin(cloud)).reported.on === 'boolean', 30_000);
  });

  it('logs JSON lines that name the protocol once', async () => {
    await mapper.waitForLog('mapper running');
    const running = mapper.rawLines.find((l) => l.includes('"msg":"mapper running"'))!;
    expect(running.match(/"protocol":/g)).toHaveLength(1);
    expect(JSON.parse(running)).toMatchObject({ svc: 'mapper', protocol: 'virtual', node: 'edge-1' });
    // Lines of the loop and its device workers too (they bind the protocol themselves).
    const connected = mapper.rawLines.find((l) => l.includes('"msg":"device connected"'))!;
    expect(connected.match(/"protocol":/g)).toHaveLength(1);
    expect(JSON.parse(connected)).toMatchObject({ protocol: 'virtual', node: 'edge-1', device: 'lamp' });
  });

  it('applies a desired value from the cloud and reports it back', async () => {
    await switchLamp(cloud, true);
    await switchLamp(cloud, false);
  });

  it('a device the mapper reaches shows online in the cloud; one it cannot reach shows offline with the reason', async () => {
    await waitFor('lamp online', async () => (await api(cloud).call<Device>('GET', '/devices/lamp')).body.status?.online === true, 30_000);
    expect((await api(cloud).call('POST', '/devices', { metadata: { name: 'dead-lamp' }, spec: {
      model: 'virtual-switch', nodeName: 'edge-1', protocol: { name: 'virtual', config: { kind: 'switch', unreachable: true } },
      properties: [{ name: 'on', collectCycleMs: 200, reportCycleMs: 200 }],
    } })).status).toBe(201);
    const dead = await waitFor('dead-lamp offline with a reason', async () => {
      const status = (await api(cloud).call<Device>('GET', '/devices/dead-lamp')).body.status;
      return status?.offlineReason !== undefined ? status : undefined;
    }, 30_000);
    expect(dead.online).toBe(false);
    expect(dead.offlineReason).toMatch(/^connect: .*unreachable/);
    const shown = await runToEnd('edgectl', ['get', 'device', 'dead-lamp'], { EF_SERVER: cloud.url, EF_TOKEN: cloud.token });
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/^Online:\s+no \(connect: .*unreachable.*\)$/m);
  });
});
