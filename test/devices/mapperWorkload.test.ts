import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../../protocol/index.js';
import { api, Fleet, ROOT, type Cloud, type Edge } from '../helpers/fleet.js';
import { createLamp, lampTwin, switchLamp } from '../helpers/virtualLamp.js';
import { isAlive, waitFor } from '../helpers/wait.js';

/**
 * Issue 4: "edgecore can also run mappers as workloads". One app, applied in the cloud, runs the
 * real `mapper` binary on the node with no per-node flags: the template says `deviceMapper`,
 * and edgecore hands the process its node, local API, broker and credential file. Real
 * cloudcore, edgecore, mapper process and broker.
 */
describe('a mapper run by edgecore as a workload', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;

  const mapperWorkload = async () => (await fleet.edgeStatus(edge)).workloads.find((w) => w.name === 'virtual-mapper');
  /** The environment the running mapper process was started with. */
  const environOf = (pid: number): Record<string, string> => Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8')
    .split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const mqttUrlOf = (e: Edge) => String(e.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl);

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    await createLamp(cloud, 'edge-1');
    const created = await api(cloud).call('POST', '/apps', { kind: 'App', metadata: { name: 'virtual-mapper' }, spec: {
      template: {
        runtime: 'process', command: process.execPath,
        // No --node, --edge-url, --mqtt, --credential-file and no protocol argument: edgecore says.
        args: [join(ROOT, 'dist', 'device-mappers', 'main.js'), '--refresh-seconds', '1'],
        deviceMapper: { protocol: 'virtual' },
      },
    } });
    expect(created.status).toBe(201);
  });
  afterAll(async () => { await fleet.cleanup(); });

  it('runs on the node with its node, edge API, broker and credential file in its environment', async () => {
    const w = await waitFor('mapper workload running', async () => {
      const found = await mapperWorkload();
      return found?.status?.state === 'Running' && found.status.pid ? found : undefined;
    }, 30_000);
    const env = environOf(w.status!.pid!);
    expect(env).toMatchObject({
      EF_MAPPER_PROTOCOL: 'virtual', EF_MAPPER_NODE: 'edge-1', EF_MAPPER_EDGE_URL: edge.statusUrl, EF_MAPPER_MQTT: mqttUrlOf(edge),
      // Where edgecore is root the mapper runs as its own user, with its own read-only copy of the node's root-only file.
      EF_MAPPER_CREDENTIAL_FILE: process.getuid?.() === 0
        ? join(edge.dataDir, 'workload-data', 'virtual-mapper', 'mapper', 'password')
        : join(edge.dataDir, 'mappers', 'virtual.password'),
    });
    if (process.getuid?.() === 0) {
      expect(readFileSync(env.EF_MAPPER_CREDENTIAL_FILE!, 'utf8')).toBe(readFileSync(join(edge.dataDir, 'mappers', 'virtual.password'), 'utf8'));
      expect(statSync(env.EF_MAPPER_CREDENTIAL_FILE!)).toMatchObject({ mode: 0o100400, uid: Number(readFileSync(`/proc/${w.status!.pid!}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1]) });
    }
    // The password is read from the file; it is in neither the environment nor the stored template.
    expect(Object.values(env)).not.toContain(readFileSync(env.EF_MAPPER_CREDENTIAL_FILE!, 'utf8').trim());
    await waitFor('reported on', async () => typeof (await lampTwin(cloud)).reported.on === 'boolean', 30_000);
  });

  it('applies a desired value from the cloud and reports it back', async () => {
    await switchLamp(cloud, true);
  });

  it('after kill -9 of edgecore, comes back pointed at the restarted edge (new ports) and serves the device again', async () => {
    const before = (await mapperWorkload())!.status!.pid!;
    await edge.proc.kill9();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, dataDir: edge.dataDir });
    const w = await waitFor('mapper workload running again', async () => {
      const found = await mapperWorkload();
      return found?.status?.state === 'Running' && found.status.pid && found.status.pid !== before ? found : undefined;
    }, 30_000);
    await waitFor(`old mapper ${before} reaped`, () => !isAlive(before));
    expect(environOf(w.status!.pid!)).toMatchObject({ EF_MAPPER_EDGE_URL: edge.statusUrl, EF_MAPPER_MQTT: mqttUrlOf(edge) });
    await switchLamp(cloud, false);
    // The restarted edge knew nothing of what the old mapper said; the new one tells it again,
    // right after its CONNACK, while the broker may still be restoring its persistent session.
    await waitFor('lamp online in the cloud again', async () => (await api(cloud).call<Device>('GET', '/devices/lamp')).body.status?.online === true, 30_000);
  });
});
