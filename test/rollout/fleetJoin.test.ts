import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessCloud, type SimCloud } from '../helpers/simCloud.js';
import { SimFleet } from '../helpers/simFleet.js';
import { waitFor } from '../helpers/wait.js';

/** The harness itself (no rollout code): 500 simulated nodes join over the real link and all run an app. */
const NODES = 500;

describe(`simulated fleet of ${NODES} nodes`, () => {
  const root = mkdtempSync(join(tmpdir(), 'ef-fleetjoin-'));
  let cloud: SimCloud;
  let fleet: SimFleet;

  beforeAll(async () => {
    cloud = await startInProcessCloud({ dataDir: join(root, 'cloud') });
    fleet = await SimFleet.start({ cloudUrl: cloud.url, apiUrl: cloud.url, adminToken: cloud.adminToken, nodes: NODES, dataRoot: join(root, 'edges') });
  }, 240_000);

  afterAll(async () => {
    await fleet?.stop();
    await cloud?.close();
    rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it('every node joins, connects and runs an app; the cloud sees them all Running', async () => {
    expect(fleet.nodes).toHaveLength(NODES);
    await fleet.api.request('POST', '/apps', {
      metadata: { name: 'hello' },
      spec: { selector: {}, template: { runtime: 'process', command: '/bin/true', env: { V: '1' } } },
    });
    await waitFor('every node runs hello', () => fleet.nodesRunning('hello', 1).length === NODES, 120_000, 250);
    const app = await waitFor('cloud aggregates 500 Running', async () => {
      const body = await fleet.api.request('GET', '/apps/hello') as { status?: { nodes: { state: string; generation?: number }[] } };
      const nodes = body.status?.nodes ?? [];
      return nodes.filter((n) => n.state === 'Running' && n.generation === 1).length === NODES ? nodes : undefined;
    }, 120_000, 500);
    expect(app).toHaveLength(NODES);
    for (const node of fleet.nodes) expect(fleet.edge(node).startedRevisions('hello')).toEqual([1]);
  }, 240_000);

  it('a node taken offline resumes on return and catches up with a change made meanwhile', async () => {
    const [away] = fleet.nodes;
    await fleet.offline([away!]);
    await fleet.api.request('PUT', '/apps/hello', {
      metadata: { name: 'hello' },
      spec: { selector: {}, template: { runtime: 'process', command: '/bin/true', env: { V: '2' } } },
    });
    await waitFor('the others run generation 2', () => fleet.nodesRunning('hello', 2).length === NODES - 1, 120_000, 250);
    expect(fleet.edge(away!).running('hello')?.revision).toBe(1);
    await fleet.online([away!]);
    await waitFor('the returning node runs generation 2', () => fleet.edge(away!).running('hello')?.revision === 2, 30_000);
    expect(fleet.edge(away!).link?.stats.snapshots).toBe(0); // a resume, not a snapshot
  }, 240_000);
});
