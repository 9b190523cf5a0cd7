import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOTSTRAP_NAMES, bearerToken, OperatorAuth, permit, roleForToken, type OperatorPrincipal } from './auth.js';
import { ApiError } from './errors.js';
import { READONLY_TOKEN, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

const tokens = { admin: 'a-secret', readonly: 'r-secret' };

describe('bearer token rules', () => {
  it('reads the token from an Authorization header', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('maps tokens to roles, and nothing else to a role', () => {
    expect(roleForToken(tokens, 'a-secret')).toBe('admin');
    expect(roleForToken(tokens, 'r-secret')).toBe('readonly');
    expect(roleForToken(tokens, 'a-secre')).toBeUndefined();
    expect(roleForToken(tokens, '')).toBeUndefined();
  });

  it('names the bootstrap tokens, and refuses anything else with 401', async () => {
    const auth = new OperatorAuth(tokens);
    expect(await auth.authenticate('Bearer a-secret')).toEqual({ tokenId: 'bootstrap-admin', tokenName: 'bootstrap-admin', role: 'admin' });
    expect(await auth.authenticate('Bearer r-secret')).toEqual({ tokenId: 'bootstrap-readonly', tokenName: 'bootstrap-readonly', role: 'readonly' });
    await expect(auth.authenticate('Bearer nope')).rejects.toThrow(ApiError);
    await expect(auth.authenticate(undefined)).rejects.toThrow(/missing bearer token/);
  });

  it('lets readonly read and nothing more; admin-only routes refuse it reads too', () => {
    const reader: OperatorPrincipal = { tokenId: 'r', tokenName: BOOTSTRAP_NAMES.readonly, role: 'readonly' };
    const admin: OperatorPrincipal = { tokenId: 'a', tokenName: BOOTSTRAP_NAMES.admin, role: 'admin' };
    expect(() => permit(reader, 'GET')).not.toThrow();
    expect(() => permit(reader, 'HEAD')).not.toThrow();
    expect(() => permit(reader, 'GET', true)).toThrow(/needs an admin token/);
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      expect(() => permit(reader, method)).toThrow(ApiError);
      expect(() => permit(admin, method, true)).not.toThrow();
    }
  });
});

describe('API authentication over HTTP', () => {
  let api: TestApi;
  beforeAll(async () => { api = await startTestApi(); });
  afterAll(async () => { await api.close(); });

  const app = { metadata: { name: 'web' }, spec: { template: { runtime: 'process', command: '/bin/true' } } };

  it('answers /healthz without a token', async () => {
    const res = await api.call('GET', '/healthz', { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true, revision: expect.any(Number) });
  });

  it('refuses a request without a token with 401', async () => {
    const res = await api.call('GET', '/nodes', { token: null });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: expect.stringContaining('missing bearer token'), code: 'EF_UNAUTHENTICATED' });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('refuses an unknown token with 401', async () => {
    const res = await api.call('GET', '/nodes', { token: 'guess' });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'unknown bearer token', code: 'EF_UNAUTHENTICATED' });
  });

  it('lets the readonly token read but not write (403), and the refused write stores nothing', async () => {
    expect((await api.call('GET', '/apps', { token: READONLY_TOKEN })).status).toBe(200);
    const res = await api.call('POST', '/apps', { token: READONLY_TOKEN, body: app });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ error: expect.stringContaining('readonly'), code: 'EF_FORBIDDEN' });
    expect(await api.store.get('App', 'web')).toBeUndefined();
  });

  it('checks the token before the body: no token and a bad body is still 401', async () => {
    const res = await api.call('POST', '/apps', { token: null, rawBody: '{nope' });
    expect(res.status).toBe(401);
  });

  it('lets the admin token write', async () => {
    const res = await api.call('POST', '/apps', { body: app });
    expect(res.status).toBe(201);
  });
});
