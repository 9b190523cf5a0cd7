import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, runBin, type Cloud, type Edge, type Proc } from '../helpers/fleet.js';
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
    await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'virtual-switch' }, spec: { protocol: 'virtual', properties: [
      { name: 'on', type: 'boolean', accessMode: 'ReadWrite' },
    ] } });
    const r = await api(cloud).call('POST', '/devices', { metadata: { name: 'lamp' }, spec: {
      model: 'virtual-switch', nodeName: 'edge-1', protocol: { name: 'virtual', config: { kind: 'switch' } },
      properties: [{ name: 'on', collectCycleMs: 200, reportCycleMs: 200 }],
    } });
    expect(r.status).toBe(201);
    await waitFor('device on the edge', async () => JSON.stringify(await fleet.edgeStatus(edge)).includes('"lamp"'));
    const ready = edge.proc.lines.find((l) => l.msg === 'edgecore ready')!;
    mapper = runBin('mapper', ['virtual', '--node', 'edge-1', '--edge-url', edge.statusUrl, '--mqtt', String(ready.mqttUrl),
      '--credential-file', join(edge.dataDir, 'mappers', 'virtual.password'), '--refresh-seconds', '1']);
  });
  afterAll(async () => { await mapper?.stop(); await fleet.cleanup(); });

  const twin = async () => (await api(cloud).call<{ reported: Record<string, unknown>; delta: Record<string, unknown> }>('GET', '/devices/lamp/twin')).body;

  it('reports the device state to the cloud twin', async () => {
    await waitFor('reported on', async () => typeof (await twin()).reported.on === 'boolean', 30_000);
  });

  it('applies a desired value from the cloud and reports it back', async () => {
    expect((await api(cloud).call('PATCH', '/devices/lamp/twin', { on: true })).status).toBe(200);
    await waitFor('lamp on, no delta', async () => {
      const t = await twin();
      return t.reported.on === true && Object.keys(t.delta).length === 0;
    }, 30_000);
    expect((await api(cloud).call('PATCH', '/devices/lamp/twin', { on: false })).status).toBe(200);
    await waitFor('lamp off', async () => (await twin()).reported.on === false, 30_000);
  });
});
