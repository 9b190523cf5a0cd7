import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditList, CreatedOperatorToken, OperatorTokenList } from '../../../protocol/index.js';
import { readModifyWrite } from '../../store/readModifyWrite.js';
import { READONLY_TOKEN, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

const app = (name: string) => ({ metadata: { name }, spec: { template: { runtime: 'process', command: '/bin/true' } } });

describe('named operator tokens', () => {
  let api: TestApi;
  beforeAll(async () => { api = await startTestApi(); });
  afterAll(async () => { await api.close(); });

  const create = (body: unknown, token?: string) => api.call('POST', '/operatortokens', { body, ...(token ? { token } : {}) });

  it('shows the token once; the list names it without the token or its hash; it acts in its role', async () => {
    const res = await create({ name: 'alice', role: 'readonly', ttlSeconds: 3600 });
    expect(res.status).toBe(201);
    const created = res.body as CreatedOperatorToken;
    expect(created).toMatchObject({ name: 'alice', role: 'readonly', lastUsedAt: null, id: expect.stringMatching(/^[0-9a-f]{12}$/) });
    expect(created.token).toMatch(/^efo_[0-9a-f]{12}\./);
    expect(Date.parse(created.expiresAt) - Date.parse(created.createdAt)).toBeCloseTo(3600_000, -4);

    const stored = await api.store.get('OperatorToken', 'alice');
    expect(JSON.stringify(stored)).not.toContain(created.token.split('.')[1]);

    expect((await api.call('GET', '/apps', { token: created.token })).status).toBe(200);
    const write = await api.call('POST', '/apps', { token: created.token, body: app('by-alice') });
    expect(write.status).toBe(403);
    expect(write.body).toMatchObject({ error: expect.stringContaining('alice has the readonly role'), code: 'EF_FORBIDDEN' });
    expect(await api.store.get('App', 'by-alice')).toBeUndefined();

    const list = (await api.call('GET', '/operatortokens')).body as OperatorTokenList;
    expect(list.items).toEqual([expect.objectContaining({ name: 'alice', id: created.id, lastUsedAt: expect.any(String) })]);
    expect(JSON.stringify(list)).not.toMatch(/efo_|secretHash|token"/);
  });

  it('lets a named admin token write, and the audit log names the person', async () => {
    const admin = (await create({ name: 'bob', role: 'admin' })).body as CreatedOperatorToken;
    expect(Date.parse(admin.expiresAt) - Date.parse(admin.createdAt)).toBeCloseTo(90 * 86_400_000, -4);
    expect((await api.call('POST', '/apps', { token: admin.token, body: app('by-bob') })).status).toBe(201);
    const audit = (await api.call('GET', '/audit?kind=app&name=by-bob')).body as AuditList;
    expect(audit.items).toEqual([expect.objectContaining({ tokenId: admin.id, tokenName: 'bob', role: 'admin', verb: 'create', status: 201 })]);
    expect(JSON.stringify(audit)).not.toContain(admin.token);
  });

  it('is admin-only, reads included: readonly tokens get 403 and nothing is stored', async () => {
    const alice = await create({ name: 'alice2', role: 'readonly' });
    const aliceToken = (alice.body as CreatedOperatorToken).token;
    for (const token of [READONLY_TOKEN, aliceToken]) {
      expect((await api.call('GET', '/operatortokens', { token })).status).toBe(403);
      expect((await api.call('GET', '/audit', { token })).status).toBe(403);
      expect((await create({ name: 'mallory', role: 'admin' }, token)).status).toBe(403);
    }
    expect(await api.store.get('OperatorToken', 'mallory')).toBeUndefined();
  });

  it('refuses bad input naming the field, and a second token of one name with 409', async () => {
    const role = await create({ name: 'carol', role: 'root' });
    expect(role.status).toBe(400);
    expect(role.body).toMatchObject({ field: 'role' });
    const ttl = await create({ name: 'carol', role: 'admin', ttlSeconds: 400 * 86_400 });
    expect(ttl.status).toBe(400);
    expect(ttl.body).toMatchObject({ field: 'ttlSeconds' });
    expect((await create({ name: 'Carol!', role: 'admin' })).status).toBe(400);
    expect(await api.store.get('OperatorToken', 'carol')).toBeUndefined();
    expect((await create({ name: 'carol', role: 'admin' })).status).toBe(201);
    const again = await create({ name: 'carol', role: 'admin' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: expect.stringContaining('revoke it first') });
  });

  it('refuses revoked and expired tokens with 401', async () => {
    const dave = (await create({ name: 'dave', role: 'admin' })).body as CreatedOperatorToken;
    const erin = (await create({ name: 'erin', role: 'admin' })).body as CreatedOperatorToken;
    expect((await api.call('GET', '/nodes', { token: dave.token })).status).toBe(200);

    const revoked = await api.call('DELETE', '/operatortokens/dave');
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ name: 'dave', id: dave.id });
    const after = await api.call('GET', '/nodes', { token: dave.token });
    expect(after.status).toBe(401);
    expect(after.body).toEqual({ error: 'unknown, expired or revoked bearer token', code: 'EF_UNAUTHENTICATED' });
    expect((await api.call('DELETE', '/operatortokens/dave')).status).toBe(404);

    await readModifyWrite(api.store, 'OperatorToken', 'erin', (cur) => ({ ...cur, spec: { ...cur.spec, expiresAt: new Date(Date.now() - 1000).toISOString() } }));
    expect((await api.call('POST', '/apps', { token: erin.token, body: app('by-erin') })).status).toBe(401);
    expect(await api.store.get('App', 'by-erin')).toBeUndefined();

    // A right id with a wrong secret is no better.
    const forged = `${erin.token.slice(0, 'efo_'.length + 13)}${'A'.repeat(43)}`;
    expect((await api.call('GET', '/nodes', { token: forged })).status).toBe(401);
  });
});

describe('GET /audit', () => {
  let api: TestApi;
  beforeAll(async () => { api = await startTestApi(); });
  afterAll(async () => { await api.close(); });

  it('records writes and refused attempts (never the token), and filters them', async () => {
    await api.call('POST', '/apps', { body: app('web') });
    await api.call('DELETE', '/apps/web', { token: READONLY_TOKEN });
    await api.call('GET', '/secrets', { token: 'guess-what' });
    await api.call('DELETE', '/apps/web');
    await api.call('GET', '/apps/web');
    const all = (await api.call('GET', '/audit')).body as AuditList;
    expect(all.items.map((r) => [r.verb, r.tokenName, r.status])).toEqual([
      ['create', 'bootstrap-admin', 201], ['delete', 'bootstrap-readonly', 403], ['list', 'unknown', 401], ['delete', 'bootstrap-admin', 200],
    ]);
    expect(all.items[2]).toMatchObject({ tokenId: null, role: null, target: { kind: 'Secret', name: null }, route: '/api/v1/secrets', sourceAddress: '127.0.0.1' });
    expect(new Set(all.items.map((r) => r.requestId)).size).toBe(4);
    expect(JSON.stringify(all)).not.toContain('guess-what');

    const deletes = (await api.call('GET', '/audit?verb=delete&token=bootstrap-admin')).body as AuditList;
    expect(deletes.items).toHaveLength(1);
    const since = encodeURIComponent(all.items[1]!.time);
    expect(((await api.call(`GET`, `/audit?since=${since}&limit=2`)).body as AuditList)).toMatchObject({ truncated: true });
  });

  it('refuses a malformed query naming the parameter', async () => {
    for (const [query, field] of [['since=yesterday', 'since'], ['limit=0', 'limit'], ['limit=99999', 'limit'], ['verb=DROP%20TABLE', 'verb'], ['colour=red', undefined]] as const) {
      const res = await api.call('GET', `/audit?${query}`);
      expect(res.status, query).toBe(400);
      if (field) expect(res.body, query).toMatchObject({ field });
    }
    const order = await api.call('GET', '/audit?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z');
    expect(order.status).toBe(400);
  });
});
