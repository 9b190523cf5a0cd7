import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient } from '../../edgecore/runtime/container/engineClient.js';
import { LABELS } from '../../edgecore/runtime/container/containerSpec.js';
import { api, Fleet, markerApp, type Cloud, type Edge } from '../helpers/fleet.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { isAlive, waitFor } from '../helpers/wait.js';
import { LONG_RUNNING, reportSkip, setUpEngine, TEST_IMAGE } from './engine.js';

const setup = await setUpEngine();
reportSkip(setup, 'edgecore with containers');

/**
 * Issue 3 end to end: real cloudcore, real edgecore with `--container-engine`, real Podman.
 * Containers are started, updated and removed by cloud changes; a full outage with edgecore
 * killed and the engine restarted brings everything back from the edge database alone.
 */
describe.skipIf(setup.engine === null)('edgecore runs containers from the cloud, and through outages', () => {
  const engine = setup.engine!;
  const client = new EngineClient({ socketPath: engine.socketPath, timeoutMs: 10_000 });
  const fleet = new Fleet();
  let cloud: Cloud;
  let proxy: TcpProxy;
  let edge: Edge;
  const node = `ctr-${process.pid}`;
  const edgeArgs = () => ['--container-engine', engine.socketPath];

  const ours = async (workload: string, all = false) => client.listContainers({
    labels: [`${LABELS.node}=${node}`, `${LABELS.workload}=${workload}`], all,
  });
  const workload = async (name: string) => (await fleet.edgeStatus(edge)).workloads.find((w) => w.name === name);
  const containerApp = (version: string) => ({
    metadata: { name: 'boxed' },
    spec: { template: { runtime: 'container', image: TEST_IMAGE, imagePullPolicy: 'Never', command: LONG_RUNNING, env: { VERSION: version }, resources: { memoryBytes: 64 * 1024 * 1024 } } },
  });

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    proxy = new TcpProxy(cloud.port);
    const url = await proxy.start();
    edge = await fleet.startEdge({ node, cloudUrl: url, joinToken: await api(cloud).token(node), extra: edgeArgs() });
  });
  afterAll(async () => {
    await fleet.cleanup();
    await proxy.close();
    await engine.cleanup();
  });

  it('a container app is started, updated and removed by cloud changes', async () => {
    expect((await api(cloud).call('POST', '/apps', containerApp('v1'))).status).toBe(201);
    await waitFor('boxed running', async () => (await workload('boxed'))?.status?.state === 'Running', 60_000);
    const [first] = await ours('boxed');
    expect(first).toBeDefined();
    const inspect = await client.inspectContainer(first!.Id);
    expect(inspect?.HostConfig.Memory).toBe(64 * 1024 * 1024);

    await api(cloud).call('PUT', '/apps/boxed', containerApp('v2'));
    await waitFor('boxed replaced', async () => {
      const list = await ours('boxed', true);
      return list.length === 1 && list[0]!.Id !== first!.Id && list[0]!.State === 'running';
    }, 60_000);
    expect((await workload('boxed'))?.generation).toBe(2);

    // exec through the cloud runs inside the container.
    const exec = await api(cloud).call<{ exitCode: number; stdout: string }>('POST', `/nodes/${node}/workloads/boxed/exec`, { command: ['/bin/sh', '-c', 'echo $VERSION'] });
    expect(exec.body).toMatchObject({ exitCode: 0 });
    expect(exec.body.stdout.trim()).toBe('v2');
  });

  it('full outage + edgecore kill -9 + engine restart: containers and processes are back without the cloud, no duplicates', async () => {
    await api(cloud).call('POST', '/apps', markerApp('plain', `${fleet.root}/plain.marker`));
    await waitFor('plain running', async () => (await workload('plain'))?.status?.state === 'Running', 30_000);
    const before = await ours('boxed');
    proxy.cut();
    await edge.proc.kill9();
    await engine.stop();
    await engine.start();
    edge = await fleet.startEdge({ node, cloudUrl: `http://127.0.0.1:${proxy.port}`, dataDir: edge.dataDir, extra: edgeArgs() });
    const back = await waitFor('both running offline', async () => {
      const s = await fleet.edgeStatus(edge);
      const all = s.workloads.every((w) => w.status?.state === 'Running');
      return all && s.workloads.length === 2 ? s : undefined;
    }, 90_000);
    expect(back.link.state).not.toBe('connected');
    const after = await ours('boxed', true);
    expect(after.filter((c) => c.State === 'running')).toHaveLength(1);
    // The container survived the engine restart and was adopted, not recreated.
    expect(after[0]!.Id).toBe(before[0]!.Id);
    const plainPid = back.workloads.find((w) => w.name === 'plain')!.status!.pid!;
    expect(isAlive(plainPid)).toBe(true);

    proxy.restore();
    await waitFor('cloud sees boxed Running again', async () => {
      const r = await api(cloud).call<{ status: { nodes: { state: string }[] } }>('GET', '/apps/boxed');
      return (await fleet.edgeStatus(edge)).link.state === 'connected' && r.body.status.nodes[0]?.state === 'Running';
    }, 60_000);
  });

  it('deleting the app removes its container', async () => {
    await api(cloud).call('DELETE', '/apps/boxed');
    await waitFor('container gone', async () => (await ours('boxed', true)).length === 0, 60_000);
  });
});
