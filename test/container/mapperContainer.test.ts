import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { LONG_RUNNING, reportSkip, setUpEngine, TEST_IMAGE } from './engine.js';

const setup = await setUpEngine();
reportSkip(setup, 'mapper containers');

/**
 * Issue 4, "edgecore can also run mappers as workloads", for a container: a `deviceMapper`
 * container runs on the node's network and finds edgecore's local API, the broker and its
 * credential (bind-mounted read-only) through EF_MAPPER_*. The busybox test image has no MQTT
 * client, so the container proves it the way a mapper starts: it fetches its device list from
 * edgecore's loopback-only API with the mounted credential. Real cloudcore, edgecore, Podman.
 */
describe.skipIf(setup.engine === null)('a device mapper in a container', () => {
  const engine = setup.engine!;
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  const node = `mapctr-${process.pid}`;
  const mapperApp = (template: Record<string, unknown>) => ({ metadata: { name: 'modbus-mapper' }, spec: { template: {
    runtime: 'container', image: TEST_IMAGE, imagePullPolicy: 'Never', command: LONG_RUNNING, deviceMapper: { protocol: 'modbus' }, ...template,
  } } });
  const exec = async (script: string) => (await api(cloud).call<{ exitCode: number; stdout: string; stderr: string }>(
    'POST', `/nodes/${node}/workloads/modbus-mapper/exec`, { command: ['/bin/sh', '-c', script] })).body;

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node, cloudUrl: cloud.url, joinToken: await api(cloud).token(node), extra: ['--container-engine', engine.socketPath] });
    expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'meter' }, spec: { protocol: 'modbus', properties: [
      { name: 'power', type: 'float', accessMode: 'ReadOnly' },
    ] } })).status).toBe(201);
    expect((await api(cloud).call('POST', '/devices', { metadata: { name: 'meter-1' }, spec: {
      model: 'meter', nodeName: node, protocol: { name: 'modbus', config: { host: '127.0.0.1', port: 5020 } },
    } })).status).toBe(201);
  });
  afterAll(async () => {
    await fleet.cleanup();
    await engine.cleanup();
  });

  it('is refused off the node\'s network, naming the field', async () => {
    const r = await api(cloud).call<{ error: string; field?: string }>('POST', '/apps', mapperApp({}));
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toContain('hostNetwork');
    expect(JSON.stringify(r.body)).toContain('must be true for a deviceMapper container');
  });

  it('reaches edgecore\'s loopback API with its mounted credential and reads its devices', async () => {
    expect((await api(cloud).call('POST', '/apps', mapperApp({ hostNetwork: true }))).status).toBe(201);
    await waitFor('mapper container running', async () => (await fleet.edgeStatus(edge)).workloads
      .find((w) => w.name === 'modbus-mapper')?.status?.state === 'Running', 60_000);
    const env = await exec('echo "$EF_MAPPER_PROTOCOL $EF_MAPPER_NODE $EF_MAPPER_EDGE_URL $EF_MAPPER_MQTT $EF_MAPPER_CREDENTIAL_FILE"');
    const mqttUrl = String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl);
    expect(env.stdout.trim()).toBe(`modbus ${node} ${edge.statusUrl} ${mqttUrl} /run/edgefleet/mapper.password`);
    const list = await exec('wget -q -O - --header "Authorization: Bearer $(cat "$EF_MAPPER_CREDENTIAL_FILE")" "$EF_MAPPER_EDGE_URL/mapper/v1/devices?protocol=$EF_MAPPER_PROTOCOL"');
    expect(list.exitCode).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject({ node, devices: [{ name: 'meter-1', protocol: { name: 'modbus' } }] });
    // The credential is the node's, read-only: the container cannot change it.
    const write = await exec('echo guess > "$EF_MAPPER_CREDENTIAL_FILE"');
    expect(write.exitCode).not.toBe(0);
  });
});
