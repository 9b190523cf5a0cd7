import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_PATHS, JoinResponseSchema } from '../../protocol/index.js';
import { registerErrorHandling } from '../api/plumbing/errors.js';
import { openSqliteStore, type SqliteStore } from '../store/sqliteStore.js';
import { mintJoinToken, replaceNodeIdentity } from './credentials.js';
import { Hub } from './hub.js';

/** `POST /hub/v1/join` on a real server and SQLite store: its body is parsed like the API's. */
describe('hub join route', () => {
  let dir: string;
  let store: SqliteStore;
  let app: FastifyInstance;
  let url: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgefleet-join-'));
    store = await openSqliteStore({ path: join(dir, 'store.db') });
    app = Fastify({ logger: false });
    registerErrorHandling(app); // as server.ts does
    await new Hub({ store, log: pino({ level: 'silent' }) }).register(app);
    url = `${await app.listen({ host: '127.0.0.1', port: 0 })}${HUB_PATHS.join}`;
  });
  afterAll(async () => {
    await app.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = async (body: string, contentType = 'application/json') => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body });
    return { status: res.status, body: (await res.json()) as unknown };
  };

  it('answers a credential for a valid token, and the token is spent', async () => {
    const { token } = await mintJoinToken(store, 'edge-1', 60, null);
    const joined = await post(JSON.stringify({ node: 'edge-1', token }));
    expect(joined.status).toBe(200);
    expect(JoinResponseSchema.parse(joined.body).node).toBe('edge-1');
    expect(await post(JSON.stringify({ node: 'edge-1', token }))).toMatchObject({ status: 401, body: { error: expect.stringContaining('already used') } });
  });

  it.each([
    ['a missing token', { node: 'edge-1' }, { error: 'token: is required', field: 'token' }],
    ['a bad node name', { node: 'Bad_Name', token: 'a.b' }, { field: 'node' }],
    ['an unknown field', { node: 'edge-1', token: 'a.b', role: 'admin' }, { error: 'role: unknown field', field: 'role' }],
    ['a body that is no object', ['edge-1'], { error: 'request body must be a JSON object' }],
  ])('refuses %s with a 400 naming the field, as the API does', async (_case, body, expected) => {
    const refused = await post(JSON.stringify(body));
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject(expected);
  });

  it('a join that fails after spending its token gives the token back: the retry joins', async () => {
    const { token } = await mintJoinToken(store, 'edge-retry', 60, null);
    // The node's credential row is damaged on disk: recording the new identity fails after the token was spent.
    await replaceNodeIdentity(store, 'edge-retry', { kind: 'bearer', lifetimeSeconds: 60 });
    const db = new Database(store.path);
    try {
      expect(db.prepare("UPDATE objects SET body = substr(body, 1, 30) WHERE kind = 'NodeCredential' AND name = 'edge-retry'").run().changes).toBe(1);
      const failed = await post(JSON.stringify({ node: 'edge-retry', token }));
      expect(failed.status).toBe(500);
      expect((await store.get('JoinToken', parseTokenId(token)))!.status.usedAt).toBeNull();
      // Repaired (as `edgectl unreadable delete` would), the same token joins, once.
      expect(db.prepare("DELETE FROM objects WHERE kind = 'NodeCredential' AND name = 'edge-retry'").run().changes).toBe(1);
    } finally {
      db.close();
    }
    expect((await post(JSON.stringify({ node: 'edge-retry', token }))).status).toBe(200);
    expect((await post(JSON.stringify({ node: 'edge-retry', token }))).body).toMatchObject({ error: expect.stringMatching(/already used/) });
  });
});

/** The id part of `<id>.<secret>`. */
function parseTokenId(token: string): string {
  return token.slice(0, token.indexOf('.'));
}
