import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../../store/sqliteStore.js';
import { isUseStale, LAST_USED_GRANULARITY_MS, looksLikeNamedToken, mintOperatorToken, verifyOperatorToken } from './operatorTokens.js';

describe('named operator token rules', () => {
  let store: SqliteStore;
  beforeEach(async () => { store = await openSqliteStore({ path: ':memory:' }); });
  afterEach(async () => { await store.close(); });

  it('recognises the token shape and nothing looser', () => {
    expect(looksLikeNamedToken(`efo_0123456789ab.${'x'.repeat(43)}`)).toBe(true);
    expect(looksLikeNamedToken(`efo_0123456789ab.${'x'.repeat(42)}`)).toBe(false);
    expect(looksLikeNamedToken(`efo_0123456789AB.${'x'.repeat(43)}`)).toBe(false);
    expect(looksLikeNamedToken('admin-token')).toBe(false);
  });

  it('records use at most once per minute: one store write, not one per request', async () => {
    const t0 = new Date('2026-03-01T00:00:00Z');
    const { token } = await mintOperatorToken(store, { name: 'alice', role: 'admin', ttlSeconds: 3600 }, t0);
    const revision = async () => store.revision();
    const settle = () => new Promise((r) => setTimeout(r, 20));
    expect(await verifyOperatorToken(store, token, t0)).toMatchObject({ name: 'alice', role: 'admin' });
    await settle();
    const afterFirst = await revision();
    for (let i = 1; i <= 5; i++) await verifyOperatorToken(store, token, new Date(t0.getTime() + i * 1000));
    await settle();
    expect(await revision()).toBe(afterFirst);
    expect((await store.get('OperatorToken', 'alice'))?.status.lastUsedAt).toBe(t0.toISOString());
    await verifyOperatorToken(store, token, new Date(t0.getTime() + LAST_USED_GRANULARITY_MS));
    await settle();
    expect(await revision()).toBe(afterFirst + 1);
  });

  it('refuses a token at its expiry, and the use check is pure', async () => {
    const t0 = new Date('2026-03-01T00:00:00Z');
    const { token } = await mintOperatorToken(store, { name: 'bob', role: 'readonly', ttlSeconds: 60 }, t0);
    expect(await verifyOperatorToken(store, token, new Date(t0.getTime() + 59_999))).toBeDefined();
    expect(await verifyOperatorToken(store, token, new Date(t0.getTime() + 60_000))).toBeUndefined();
    expect(isUseStale(null, t0)).toBe(true);
    expect(isUseStale(t0.toISOString(), new Date(t0.getTime() + 59_999))).toBe(false);
  });
});
