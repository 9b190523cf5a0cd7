import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, GoneError } from '../../store/store.js';
import { ApiError, describeError, registerErrorHandling } from './errors.js';
import { startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

describe('describeError', () => {
  it('passes API and store errors through with their status', () => {
    expect(describeError(new ApiError(400, 'x: bad', 'x'))).toEqual({ statusCode: 400, body: { error: 'x: bad', field: 'x', code: 'EF_INVALID' }, internal: false });
    expect(describeError(new ConflictError('exists'))).toEqual({ statusCode: 409, body: { error: 'exists', code: 'EF_CONFLICT' }, internal: false });
    expect(describeError(new GoneError('compacted')).statusCode).toBe(410);
  });

  it('hides unexpected errors behind a 500', () => {
    expect(describeError(new TypeError('secret internals'))).toEqual({ statusCode: 500, body: { error: 'internal error', code: 'EF_INTERNAL' }, internal: true });
    expect(describeError('a string')).toEqual({ statusCode: 500, body: { error: 'internal error', code: 'EF_INTERNAL' }, internal: true });
  });
});

describe('API error answers over HTTP', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({
      configure: (app) => {
        app.get('/boom', async () => { throw new Error('database password is hunter2'); });
      },
    });
  });
  afterAll(async () => { await api.close(); });

  it('refuses malformed JSON with 400 and a clear message', async () => {
    const res = await api.call('POST', '/apps', { rawBody: '{"metadata": {' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'request body is not valid JSON', code: 'EF_INVALID' });
  });

  it('refuses a body that is not JSON with 415', async () => {
    const res = await api.call('POST', '/apps', { rawBody: 'name=web', headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(415);
    expect(res.body).toEqual({ error: expect.stringContaining('application/json'), code: 'EF_UNSUPPORTED_MEDIA_TYPE' });
    const form = await api.call('POST', '/tokens', { rawBody: 'node=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
  });

  it('refuses a body over 1 MiB with 413 and stores nothing', async () => {
    const big = {
      metadata: { name: 'big', annotations: { blob: 'x'.repeat(1024 * 1024 + 10) } },
      spec: { template: { runtime: 'process', command: '/bin/true' } },
    };
    const res = await api.call('POST', '/apps', { body: big });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ error: expect.stringContaining('larger than the limit'), code: 'EF_BODY_TOO_LARGE' });
    expect(await api.store.get('App', 'big')).toBeUndefined();
  });

  it('accepts a body just under the limit', async () => {
    const near = {
      metadata: { name: 'near', annotations: { blob: 'x'.repeat(1000 * 1000) } },
      spec: { template: { runtime: 'process', command: '/bin/true' } },
    };
    expect((await api.call('POST', '/apps', { body: near })).status).toBe(201);
  });

  it('answers 404 as {error} for unknown routes, inside and outside /api/v1', async () => {
    const inside = await api.call('GET', '/nope');
    expect(inside.status).toBe(404);
    expect(inside.body).toEqual({ error: 'no route for GET /api/v1/nope', code: 'EF_NOT_FOUND' });
    const outside = await fetch(`${api.origin}/elsewhere`);
    expect(outside.status).toBe(404);
    expect(await outside.json()).toEqual({ error: 'no route for GET /elsewhere', code: 'EF_NOT_FOUND' });
  });

  it('answers 404 for a missing object', async () => {
    const res = await api.call('GET', '/apps/ghost');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: expect.stringContaining('"ghost" not found'), code: 'EF_NOT_FOUND' });
  });

  it('spells a missing object the same way whichever path finds it absent (route read or store write)', async () => {
    const read = await api.call('GET', '/apps/ghost');
    const removed = await api.call('DELETE', '/apps/ghost');
    expect(read.body).toEqual({ error: 'app "ghost" not found', code: 'EF_NOT_FOUND' });
    expect(removed).toMatchObject({ status: 404, body: { error: 'app "ghost" not found' } });
    expect((await api.call('DELETE', '/devicemodels/ghost')).body).toEqual({ error: 'device model "ghost" not found', code: 'EF_NOT_FOUND' });
  });

  it('answers 500 without leaking the message or stack of an unexpected error', async () => {
    const res = await fetch(`${api.origin}/boom`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: 'internal error', code: 'EF_INTERNAL' });
    expect(text).not.toContain('hunter2');
  });

  it('names the query parameter at fault', async () => {
    const bad = await api.call('GET', '/nodes?labelSelector=' + encodeURIComponent('zone in (a'));
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: 'labelSelector' });
    const rv = await api.call('GET', '/apps?resourceVersion=3');
    expect(rv.body).toEqual({ error: 'resourceVersion: is only allowed with watch=true', field: 'resourceVersion', code: 'EF_INVALID' });
    const unknown = await api.call('GET', '/apps?labelselector=a');
    expect(unknown.body).toEqual({ error: 'labelselector: unknown field', field: 'labelselector', code: 'EF_INVALID' });
    const limit = await api.call('GET', '/events?limit=0');
    expect(limit.status).toBe(400);
    expect(limit.body).toMatchObject({ field: 'limit' });
  });
});

describe('what the error handler logs', () => {
  it('logs a deliberate 503 (node not connected) as one warn line without a stack, and a bug as an error with one', async () => {
    const lines: Array<{ level: number; msg?: string; err?: { stack?: string } }> = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as typeof lines[number]); done(); } });
    const app = Fastify({ logger: { level: 'info', stream: sink } });
    registerErrorHandling(app);
    app.get('/offline', async () => { throw new ApiError(503, 'node "edge-9" is not connected; logs and exec need a live link'); });
    app.get('/bug', async () => { throw new Error('a bug'); });
    try {
      const offline = await app.inject({ method: 'GET', url: '/offline' });
      expect(offline.statusCode).toBe(503);
      expect(offline.json()).toEqual({ error: 'node "edge-9" is not connected; logs and exec need a live link', code: 'EF_UNAVAILABLE' });
      const refused = lines.filter((l) => l.level >= 40);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ level: 40, msg: 'request not served' });
      expect(JSON.stringify(refused[0])).not.toContain('stack');
      lines.length = 0;
      expect((await app.inject({ method: 'GET', url: '/bug' })).statusCode).toBe(500);
      expect(lines.find((l) => l.level === 50)?.err?.stack).toContain('a bug');
    } finally {
      await app.close();
    }
  });
});
