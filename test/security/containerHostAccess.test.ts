import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient } from '../../edgecore/runtime/container/engineClient.js';
import { LABELS } from '../../edgecore/runtime/container/containerSpec.js';
import { LONG_RUNNING, reportSkip, setUpEngine, TEST_IMAGE } from '../container/engine.js';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { sleep, waitFor } from '../helpers/wait.js';

const setup = await setUpEngine();
reportSkip(setup, 'container host access');

/**
 * Attack (issue 20): a container template from the cloud mounted the node's /etc, its data dir
 * (credential, database) or the engine socket with hostPath, or joined the node's network. The
 * node now refuses all of that unless its owner allowed it, before any container exists: the
 * workload goes Failed naming the field and the setting. Real cloudcore, edgecore, Podman.
 */
describe.skipIf(setup.engine === null)('container templates reaching into the node', () => {
  const engine = setup.engine!;
  const client = new EngineClient({ socketPath: engine.socketPath, timeoutMs: 10_000 });
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let allowed: string;
  const node = `hostacc-${process.pid}`;

  const containersOf = (workload: string) => client.listContainers({ labels: [`${LABELS.node}=${node}`, `${LABELS.workload}=${workload}`], all: true });
  const app = (name: string, template: Record<string, unknown>) => ({ metadata: { name }, spec: { template: {
    runtime: 'container', image: TEST_IMAGE, imagePullPolicy: 'Never', command: LONG_RUNNING, ...template,
  } } });
  const failedWith = async (name: string) => {
    const failed = await waitFor(`${name} Failed`, async () => (await fleet.edgeStatus(edge)).workloads.find((w) => w.name === name && w.status?.state === 'Failed'), 30_000);
    return failed.status as { lastError?: string };
  };

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    allowed = fleet.tempDir('ef-allowed-');
    mkdirSync(join(allowed, 'models'));
    edge = await fleet.startEdge({ node, cloudUrl: cloud.url, joinToken: await api(cloud).token(node), extra: ['--container-engine', engine.socketPath, '--allow-host-paths', allowed] });
  });
  afterAll(async () => {
    await fleet.cleanup();
    await engine.cleanup();
  });

  it('the node\'s /etc, its data dir and the engine socket are refused by name, and no container is made', async () => {
    const cases = [
      ['etc', '/etc', 'it is /etc, which no container may mount'],
      ['datadir', edge.dataDir, `it is ${edge.dataDir}, which no container may mount`],
      ['socket', engine.socketPath, 'which no container may mount'],
      ['elsewhere', '/srv', 'hostPath volumes must be under a directory the node allows with --allow-host-paths'],
    ] as const;
    for (const [name, hostPath] of cases) {
      expect((await api(cloud).call('POST', '/apps', app(name, { volumes: [{ hostPath, mountPath: '/host' }] }))).status).toBe(201);
    }
    for (const [name, , why] of cases) {
      const status = await failedWith(name);
      expect(status.lastError).toContain('volumes[0].hostPath');
      expect(status.lastError).toContain(why);
    }
    await sleep(1_000); // time for a container to appear, if one were going to
    for (const [name] of cases) expect(await containersOf(name)).toEqual([]);
    expect(edge.proc.exitCode).toBeUndefined();
  });

  it('hostNetwork is refused without --allow-host-network; a directory the node allows is mounted', async () => {
    expect((await api(cloud).call('POST', '/apps', app('hostnet', { hostNetwork: true }))).status).toBe(201);
    expect((await failedWith('hostnet')).lastError).toMatch(/^hostNetwork: refused on this node/);
    expect(await containersOf('hostnet')).toEqual([]);

    expect((await api(cloud).call('POST', '/apps', app('models', { volumes: [{ hostPath: join(allowed, 'models'), mountPath: '/models', readOnly: true }] }))).status).toBe(201);
    await waitFor('models running', async () => (await fleet.edgeStatus(edge)).workloads.find((w) => w.name === 'models')?.status?.state === 'Running' || undefined, 60_000);
    expect(await containersOf('models')).toHaveLength(1);
    expect(edge.proc.lines.some((l) => l.msg === 'containers may mount these node directories (--allow-host-paths)')).toBe(true);
  });
});
