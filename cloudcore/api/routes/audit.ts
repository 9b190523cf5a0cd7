import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AuditListSchema, NameSchema } from '../../../protocol/index.js';
import type { AuditSink } from '../plumbing/auditHook.js';
import { requireAdmin } from '../plumbing/auth.js';
import type { ZodTypeProvider } from '../plumbing/zodSchemas.js';

/** `GET /audit`: the audit log, rotated files included; admin-only. */

export const DEFAULT_AUDIT_LIMIT = 100;
export const MAX_AUDIT_LIMIT = 10_000;

const TimeParam = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z')
  .transform((s) => new Date(s));

export const AuditQuery = z.strictObject({
  since: TimeParam.optional(),
  until: TimeParam.optional(),
  verb: z.string().regex(/^[a-z][a-z-]{0,31}$/, 'must be a verb such as create, update, patch, delete, exec, logs').optional(),
  kind: z.string().regex(/^[A-Za-z]{1,64}$/, 'must be a kind such as node, app, secret').optional(),
  name: NameSchema.optional(),
  token: z.string().min(1).max(253).optional(),
  limit: z.string().regex(/^\d+$/, 'must be a positive integer').transform(Number)
    .pipe(z.number().int().min(1).max(MAX_AUDIT_LIMIT)).default(DEFAULT_AUDIT_LIMIT),
}).refine((q) => !q.since || !q.until || q.since < q.until, { path: ['until'], message: 'must be later than since' });

export async function auditRoutes(app: FastifyInstance, { audit }: { audit: AuditSink }): Promise<void> {
  app.addHook('onRequest', requireAdmin);
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/audit', { schema: { querystring: AuditQuery, response: { '2xx': AuditListSchema } } }, async (request) => {
    const { limit, ...filter } = request.query;
    const { items, truncated } = await audit.query(filter, limit);
    return { items, truncated };
  });
}
