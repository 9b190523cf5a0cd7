import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Workload } from '../../../protocol/index.js';
import { consumeJoinToken, replaceNodeIdentity } from '../../hub/credentials.js';
import type { Store } from '../../store/store.js';

/** What the hub's join does over plain HTTP: spend the token, give the node a bearer identity. */
async function redeemJoinToken(store: Store, node: string, token: string): Promise<void> {
  await consumeJoinToken(store, node, token);
  await replaceNodeIdentity(store, node, { kind: 'bearer', lifetimeSeconds: 3600 });
}
import type { SqliteStore } from '../../store/sqliteStore.js';
import { READONLY_TOKEN, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

/** DELETE /unreadable/{kind}/{name} on the real API and SQLite store, the row damaged in the file. */
describe('unreadable objects API', () => {
  let api: TestApi;
  beforeAll(async () => { api = await startTestApi(); });
  afterAll(async () => { await api.close(); });

  function damage(kind: string, name: string): void {
    const db = new Database((api.store as SqliteStore).path);
    try {
      expect(db.prepare('UPDATE objects SET body = substr(body, 1, 30) WHERE kind = ? AND name = ?').run(kind, name).changes).toBe(1);
    } finally {
      db.close();
    }
  }

  it('a node removed this way loses its credential, join tokens and workloads, as with its own delete', async () => {
    const minted = await api.call('POST', '/tokens', { body: { node: 'edge-7', ttlSeconds: 600 } });
    await redeemJoinToken(api.store, 'edge-7', (minted.body as { token: string }).token);
    const unused = (await api.call('POST', '/tokens', { body: { node: 'edge-7', ttlSeconds: 600 } })).body as { token: string };
    const template = { runtime: 'process' as const, command: '/bin/true', args: [], env: {}, restartPolicy: 'Always' as const, probes: {}, configs: [], secrets: [] };
    const workload: Workload = { kind: 'Workload', metadata: { name: 'app.edge-7' }, spec: { nodeName: 'edge-7', app: 'app', generation: 1, template } };
    await api.store.create(workload);
    damage('Node', 'edge-7');

    const listed = await api.call('GET', '/nodes');
    expect(listed.status).toBe(500);
    expect((listed.body as { error: string }).error).toMatch(/^cannot read Node "edge-7" from the store: not JSON .*edgectl delete unreadable Node edge-7/);
    expect((await api.call('DELETE', '/nodes/edge-7')).status).toBe(500); // its own delete cannot read it either
    expect((await api.call('DELETE', '/unreadable/node/edge-7', { token: READONLY_TOKEN })).status).toBe(403);

    const survey = await api.call('GET', '/unreadable', { token: READONLY_TOKEN });
    expect(survey.status).toBe(200);
    expect(survey.body).toEqual({ items: [{ kind: 'Node', name: 'edge-7', reason: expect.stringMatching(/^not JSON/) as unknown }] });

    const removed = await api.call('DELETE', '/unreadable/nodes/edge-7');
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ kind: 'Node', name: 'edge-7', deleted: true });
    expect(await api.store.get('NodeCredential', 'edge-7')).toBeUndefined();
    expect(await api.store.get('Workload', 'app.edge-7')).toBeUndefined();
    expect(await api.store.get('JoinToken', unused.token.split('.')[0]!)).toBeUndefined();
    expect((await api.call('GET', '/nodes')).status).toBe(200);
    expect((await api.call('GET', '/unreadable')).body).toEqual({ items: [] });
    expect((await api.call('DELETE', '/unreadable/Node/edge-7')).status).toBe(404);
  });

  it('refuses an unknown kind naming the kinds, and a bad name', async () => {
    const kind = await api.call('DELETE', '/unreadable/gadget/x');
    expect(kind.status).toBe(400);
    expect((kind.body as { error: string }).error).toMatch(/unknown kind "gadget"; one of App, Workload, Node/);
    expect((await api.call('DELETE', '/unreadable/App/Not_A_Name')).status).toBe(400);
  });
});
