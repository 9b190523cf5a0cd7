import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { createLamp } from '../helpers/virtualLamp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Attack (issue 20, "Workloads must not own the node"): a process workload, run by an edgecore
 * that runs as root, read node.credential (enough to impersonate the node), another workload's
 * secrets, the mapper passwords and edge.db; an `exec` printed uid=0 and listed the data dir.
 * Re-run against a real cloudcore and edgecore: every read is refused, the exec runs as the
 * node's workload user, and the node is still whole.
 */

const asRoot = process.getuid?.() === 0;

describe.skipIf(!asRoot)('a workload on a root edgecore', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  const exec = async (workload: string, script: string) => {
    const r = await api(cloud).call<{ exitCode: number | null; stdout: string; stderr: string }>('POST', `/nodes/edge-1/workloads/${workload}/exec`, { command: ['/bin/sh', '-c', script], timeoutSeconds: 10 });
    expect(r.status).toBe(200);
    return r.body;
  };
  const app = (name: string, secrets: string[] = []) => ({
    kind: 'App', metadata: { name }, spec: { template: { runtime: 'process', command: '/bin/sh', args: ['-c', 'echo up; exec sleep 600'], secrets: secrets.map((s) => ({ name: s })) } },
  });

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    expect((await api(cloud).call('POST', '/secrets', { metadata: { name: 'db' }, data: { PASSWORD: 'victim-secret' } })).status).toBe(201);
    await createLamp(cloud, 'edge-1'); // a device of protocol "virtual": the node makes that mapper's password
    for (const body of [app('victim', ['db']), app('thief')]) expect((await api(cloud).call('POST', '/apps', body)).status).toBe(201);
    for (const name of ['victim', 'thief']) await waitFor(`${name} running`, () => fleet.runningWorkload(edge, name));
    await waitFor('the mapper password and the victim\'s log exist', () =>
      existsSync(join(edge.dataDir, 'mappers', 'virtual.password')) && existsSync(join(edge.dataDir, 'logs', 'victim.log')) || undefined);
  });
  afterAll(() => fleet.cleanup());

  it('exec runs as the workload\'s own uid in group edgefleet-workload, not root, and each workload has its own', async () => {
    const ids = async (workload: string) => (await exec(workload, 'id -u; id -gn')).stdout.trim().split('\n');
    const [thiefUid, thiefGroup] = await ids('thief');
    const [victimUid] = await ids('victim');
    expect(thiefGroup).toBe('edgefleet-workload');
    for (const uid of [thiefUid, victimUid]) expect(Number(uid)).toBeGreaterThanOrEqual(70_000);
    expect(thiefUid).not.toBe(victimUid);
  });

  it('cannot read the node credential, the databases, the mapper password, another workload\'s secret or log, nor list the data dir', async () => {
    const targets = [
      'node.credential', 'edge.db', join('mappers', 'virtual.password'),
      join('workload-data', 'victim', 'secrets', 'db', 'PASSWORD'), join('logs', 'victim.log'),
      ...readdirSync(edge.dataDir).filter((f) => f.endsWith('.db')),
    ].map((f) => join(edge.dataDir, f));
    for (const target of targets) {
      expect(existsSync(target), target).toBe(true); // there, and readable by root …
      const read = await exec('thief', `cat '${target}'`);
      expect({ target, exitCode: read.exitCode, stdout: read.stdout }).toEqual({ target, exitCode: 1, stdout: '' }); // … not by the thief
      expect(read.stderr).toMatch(/Permission denied/);
    }
    const listing = await exec('thief', `ls '${edge.dataDir}' '${join(edge.dataDir, 'workload-data')}'`);
    expect(listing.exitCode).not.toBe(0);
    expect(listing.stdout).not.toContain('node.credential');
    expect(listing.stdout).not.toContain('victim');
  });

  it('the victim still reads its own secret, owned by it and read-only', async () => {
    const own = await exec('victim', `cat '${join(edge.dataDir, 'workload-data', 'victim', 'secrets', 'db', 'PASSWORD')}'`);
    expect(own).toMatchObject({ exitCode: 0, stdout: 'victim-secret' });
    const secretFile = statSync(join(edge.dataDir, 'workload-data', 'victim', 'secrets', 'db', 'PASSWORD'));
    expect(secretFile.mode & 0o777).toBe(0o400);
    expect(statSync(join(edge.dataDir, 'logs', 'victim.log')).mode & 0o777).toBe(0o600);
    expect(statSync(join(edge.dataDir, 'logs')).mode & 0o777).toBe(0o700);
  });

  it('a template asking for root is refused on this node, naming the setting that would allow it', async () => {
    const root = app('wants-root');
    (root.spec.template as Record<string, unknown>).runAsUser = 0;
    expect((await api(cloud).call('POST', '/apps', root)).status).toBe(201);
    const failed = await waitFor('wants-root Failed', async () => (await fleet.edgeStatus(edge)).workloads.find((w) => w.name === 'wants-root' && w.status?.state === 'Failed'));
    expect(failed.status).toMatchObject({ state: 'Failed' });
    const workloads = (await api(cloud).call<{ items: { metadata: { name: string }; status?: { lastError?: string } }[] }>('GET', '/workloads')).body.items;
    await waitFor('the reason reached the cloud', async () => (await api(cloud).call<{ items: { metadata: { name: string }; status?: { lastError?: string } }[] }>('GET', '/workloads')).body.items
      .find((w) => w.metadata.name === 'wants-root.edge-1')?.status?.lastError?.includes('--workload-user root') || undefined);
    expect(workloads.length).toBeGreaterThan(0);
    expect(edge.proc.exitCode).toBeUndefined();
  });
});
