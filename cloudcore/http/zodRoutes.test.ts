import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { API_ERROR_CODES, apiErrorCodeFor } from '../../protocol/index.js';
import { registerErrorHandling } from '../api/plumbing/errors.js';
import { zodSerializerCompiler, zodValidatorCompiler, type ZodTypeProvider } from './zodRoutes.js';

const AnswerSchema = z.object({ name: z.string(), count: z.number().int() });

describe('answer schemas on cloudcore routes', () => {
  it('sends an answer that matches its schema as built, and turns one that does not into a logged 500', async () => {
    const lines: Array<{ level: number; err?: { message?: string } }> = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as typeof lines[number]); done(); } });
    const app = Fastify({ logger: { level: 'info', stream: sink } });
    registerErrorHandling(app);
    app.setValidatorCompiler(zodValidatorCompiler);
    app.setSerializerCompiler(zodSerializerCompiler);
    const api = app.withTypeProvider<ZodTypeProvider>();
    let answer: unknown = { name: 'a', count: 1 };
    // The handler's type is checked against the schema at compile time; `unknown` here lets the test break the contract at run time.
    api.get('/thing', { schema: { response: { '2xx': AnswerSchema } } }, async () => answer as z.input<typeof AnswerSchema>);
    try {
      const good = await app.inject({ method: 'GET', url: '/thing' });
      expect(good.statusCode).toBe(200);
      expect(good.json()).toEqual({ name: 'a', count: 1 });

      answer = { name: 'a', count: 'one' };
      const bad = await app.inject({ method: 'GET', url: '/thing' });
      expect(bad.statusCode).toBe(500);
      expect(bad.json()).toEqual({ error: 'internal error', code: 'EF_INTERNAL' });
      expect(lines.find((l) => l.level === 50)?.err?.message).toContain('GET /thing: the 2xx answer does not match its schema at count');
    } finally {
      await app.close();
    }
  });
});

describe('the error code catalogue', () => {
  it('gives every HTTP error status a code, and docs/api.md lists every code', () => {
    for (const status of [400, 401, 403, 404, 409, 410, 412, 413, 415, 429, 500, 503, 504]) expect(API_ERROR_CODES).toHaveProperty(apiErrorCodeFor(status));
    expect(apiErrorCodeFor(422)).toBe('EF_INVALID');
    expect(apiErrorCodeFor(502)).toBe('EF_INTERNAL');
    const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
    for (const code of Object.keys(API_ERROR_CODES)) expect(doc, code).toContain(`| \`${code}\` |`);
  });
});
