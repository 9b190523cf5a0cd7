import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../protocol/index.js';
import { EngineClient } from '../../edgecore/runtime/container/engineClient.js';
import { LABELS } from '../../edgecore/runtime/container/containerSpec.js';
import { LONG_RUNNING, reportSkip, setUpEngine, TEST_IMAGE } from '../container/engine.js';
import { buildArtefact, distDirWith } from '../helpers/edgeReleases.js';
import { Fleet, markerApp, type Cloud } from '../helpers/fleet.js';
import { localStatus, startInstalledNode, waitForVersion, type InstalledNode } from '../helpers/installedNode.js';
import { tlsApi } from '../helpers/tlsClient.js';
import { isAlive, waitFor } from '../helpers/wait.js';

const setup = await setUpEngine();
reportSkip(setup, 'agent upgrade keeps workloads');

/**
 * Workloads across an agent upgrade: an installed node (real artefact, its loader) running a
 * container on a real Podman engine and a process workload is upgraded; the container is the
 * same container with the same pid and the process workload the same process (both adopted by
 * the new agent).
 */

const OLD = '1.0.0-t1';
const NEW = '1.0.0-t2';

describe.skipIf(setup.engine === null)('agent upgrade with workloads running (real Podman, real artefacts)', () => {
  const engine = setup.engine!;
  const client = new EngineClient({ socketPath: engine.socketPath, timeoutMs: 10_000 });
  const fleet = new Fleet();
  let cloud: Cloud;
  let node: InstalledNode;
  const name = `keep-${process.pid}`;
  const pids = new Set<number>();

  beforeAll(async () => {
    await buildArtefact(OLD);
    await buildArtefact(NEW);
    cloud = await fleet.startCloud({ tls: true, extra: ['--dist-dir', distDirWith(fleet.root, [NEW]), '--rollout-tick-ms', '200'] });
    const rest = tlsApi(cloud);
    expect((await rest.call('POST', '/apps', {
      metadata: { name: 'boxed' },
      spec: { template: { runtime: 'container', image: TEST_IMAGE, imagePullPolicy: 'Never', command: LONG_RUNNING } },
    })).status).toBe(201);
    expect((await rest.call('POST', '/apps', markerApp('proc', join(fleet.root, 'proc.marker')))).status).toBe(201);
    node = await startInstalledNode({
      root: fleet.tempDir('ef-keep-'), node: name, version: OLD, cloudUrl: cloud.url, joinToken: await rest.token(name),
      extra: ['--container-engine', engine.socketPath],
    });
  }, 600_000);

  afterAll(async () => {
    await node?.loader.stop();
    for (const pid of pids) if (isAlive(pid)) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
    await fleet.cleanup();
    await engine.cleanup();
  });

  it('the container keeps its id and pid across the upgrade, and the process workload its pid', async () => {
    const running = await waitFor('both workloads running', async () => {
      const s = await localStatus(node);
      const ok = s.workloads.length === 2 && s.workloads.every((w) => w.status?.state === 'Running');
      return ok ? s : undefined;
    }, 90_000);
    const pidOf = (s: typeof running, w: string) => s.workloads.find((x) => x.name === w)!.status!.pid!;
    pids.add(pidOf(running, 'proc'));
    const [before] = await client.listContainers({ labels: [`${LABELS.node}=${name}`, `${LABELS.workload}=boxed`] });
    expect(before).toBeDefined();

    const rest = tlsApi(cloud);
    expect((await rest.call('POST', '/agent-upgrades', { name: 'keep', version: NEW })).status).toBe(201);
    await waitFor('Committed', async () => (await rest.call<Node>('GET', `/nodes/${name}`)).body.status.agent?.upgrade?.phase === 'Committed', 120_000);
    const after = await waitForVersion(node, NEW);
    pids.add(pidOf(after, 'proc'));

    const [same] = await client.listContainers({ labels: [`${LABELS.node}=${name}`, `${LABELS.workload}=boxed`] });
    expect(same?.Id).toBe(before!.Id);
    expect(pidOf(after, 'boxed')).toBe(pidOf(running, 'boxed'));
    expect(pidOf(after, 'proc')).toBe(pidOf(running, 'proc'));
    console.log(`[measured] container pid ${pidOf(running, 'boxed')} → ${pidOf(after, 'boxed')}; process workload pid ${pidOf(running, 'proc')} → ${pidOf(after, 'proc')}`);
  }, 300_000);
});
