import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/** Issue 3: configs and secrets reach the workloads that use them; a change rolls them; secrets stay secret. */
describe('configs and secrets', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  const SECRET = 'pa55-XYZZY-do-not-leak';
  const marker = () => join(fleet.root, 'secret-seen');

  beforeAll(async () => {
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1') });
    expect((await api(cloud).call('POST', '/configs', { metadata: { name: 'app-config' }, data: { GREETING: 'hi v1', 'settings.json': '{"level":1}' } })).status).toBe(201);
    expect((await api(cloud).call('POST', '/secrets', { metadata: { name: 'db' }, data: { PASSWORD: SECRET } })).status).toBe(201);
    await api(cloud).call('POST', '/apps', {
      metadata: { name: 'reader' },
      spec: { template: {
        runtime: 'process', command: '/bin/sh',
        args: ['-c', `echo "greeting=$GREETING level=$(cat "$EF_CONFIG_DIR_APP_CONFIG/settings.json")"; cat "$EF_SECRET_DIR_DB/PASSWORD" > "${marker()}"; exec sleep 600`],
        configs: [{ name: 'app-config', env: true }],
        secrets: [{ name: 'db' }],
      } },
    });
  });
  afterAll(() => fleet.cleanup());

  const reader = async () => (await fleet.edgeStatus(edge)).workloads.find((w) => w.name === 'reader');
  const logs = async () => (await fetch(`${cloud.url}/api/v1/nodes/edge-1/workloads/reader/logs?tail=20`, { headers: { authorization: `Bearer ${cloud.token}` } })).text();

  it('a workload gets config keys as env and files, and its secret as a file only it can read', async () => {
    await waitFor('reader running', async () => (await reader())?.status?.state === 'Running');
    await waitFor('greeting logged', async () => (await logs()).includes('greeting=hi v1 level={"level":1}'));
    await waitFor('secret read', () => readFileSync(marker(), 'utf8') === SECRET);
    const secretFile = join(edge.dataDir, 'workload-data', 'reader', 'secrets', 'db', 'PASSWORD');
    const stat = statSync(secretFile);
    // Where edgecore is root the workload runs as its own user, who owns the (read-only) file; else edgecore's user does.
    expect({ mode: stat.mode & 0o777, ownedByEdgecore: stat.uid === process.getuid?.() }).toEqual(
      process.getuid?.() === 0 ? { mode: 0o400, ownedByEdgecore: false } : { mode: 0o600, ownedByEdgecore: true });
  });

  it('the secret value never appears in the API, the edge status page or either process\'s logs', async () => {
    const surfaces = [
      JSON.stringify((await api(cloud).call('GET', '/secrets/db')).body),
      JSON.stringify((await api(cloud).call('GET', '/secrets')).body),
      JSON.stringify((await api(cloud).call('GET', '/workloads')).body),
      JSON.stringify((await api(cloud).call('GET', '/apps/reader')).body),
      JSON.stringify(await fleet.edgeStatus(edge)),
      JSON.stringify(cloud.proc.lines), cloud.proc.stderr.join('\n'),
      JSON.stringify(edge.proc.lines), edge.proc.stderr.join('\n'),
      await logs(),
    ];
    for (const text of surfaces) expect(text).not.toContain(SECRET);
    expect((await api(cloud).call<{ data: Record<string, string> }>('GET', '/secrets/db')).body.data).toEqual({ PASSWORD: '(redacted)' });
  });

  it('changing a config rolls the workload with the new value', async () => {
    const before = (await reader())!.status!.pid;
    expect((await api(cloud).call('PUT', '/configs/app-config', { metadata: { name: 'app-config' }, data: { GREETING: 'hi v2', 'settings.json': '{"level":2}' } })).status).toBe(200);
    await waitFor('restarted with v2', async () => {
      const w = await reader();
      return w?.status?.state === 'Running' && w.status.pid !== before && (await logs()).includes('greeting=hi v2 level={"level":2}');
    });
  });

  it('a missing secret fails the workload naming it, and it starts once the secret exists', async () => {
    await api(cloud).call('POST', '/apps', { metadata: { name: 'needy' }, spec: { template: { runtime: 'process', command: '/bin/sleep', args: ['600'], secrets: [{ name: 'later', env: true }] } } });
    const failed = await waitFor('needy failed', async () => {
      const w = (await fleet.edgeStatus(edge)).workloads.find((x) => x.name === 'needy');
      return w?.status?.state === 'Failed' ? w : undefined;
    });
    expect(JSON.stringify(failed.status)).toContain('secret \\"later\\"');
    await api(cloud).call('POST', '/secrets', { metadata: { name: 'later' }, data: { TOKEN: 'x' } });
    await waitFor('needy running', async () => (await fleet.edgeStatus(edge)).workloads.find((x) => x.name === 'needy')?.status?.state === 'Running');
  });

  it('bad config data is refused naming the key, and nothing is stored', async () => {
    const r = await api(cloud).call<{ error: string; field?: string }>('POST', '/configs', { metadata: { name: 'bad' }, data: { '../escape': 'x' } });
    expect(r.status).toBe(400);
    expect(r.body.error).toContain('data');
    expect((await api(cloud).call('GET', '/configs/bad')).status).toBe(404);
  });
});
