import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditRecord } from '../../../protocol/index.js';
import type { AuditFilter } from '../../audit/auditQuery.js';
import { buildAuditRecord } from '../../audit/auditRecord.js';
import { principalOf } from './auth.js';
import { sharedScope } from './sharedScope.js';

/** Where audit records go and are read back from (audit/auditFile.ts). */
export interface AuditSink {
  append(record: AuditRecord): void;
  /** The newest `limit` records matching `filter`, oldest first (GET /audit). */
  query(filter: AuditFilter, limit: number): Promise<{ items: AuditRecord[]; truncated: boolean }>;
}

/**
 * The one place requests are audited: an onResponse hook on the whole API scope, so every
 * route (and every refused attempt, 401 and 403) is covered without a line in any route.
 * onResponse runs when a reply finishes, hijacked ones (log streams) included; a stream the
 * client walks away from never finishes, so the connection's close writes its line instead
 * (once per request either way). A failed write is logged and does not fail the request: its
 * answer has already gone.
 */
export const auditRequests = sharedScope<{ sink: AuditSink }>(async (app, { sink }) => {
  const written = new WeakSet<FastifyRequest>();
  const write = (request: FastifyRequest, reply: FastifyReply) => {
    if (written.has(request)) return;
    written.add(request);
    const record = buildAuditRecord({
      // When the request arrived: a followed log's line is written when it ends, stamped with its start.
      time: new Date(Date.now() - reply.elapsedTime),
      requestId: request.id,
      method: request.method,
      route: request.routeOptions.url,
      params: request.params,
      body: request.body,
      status: reply.statusCode,
      sourceAddress: request.ip,
      principal: principalOf(request),
      hadAuthorization: request.headers.authorization !== undefined,
    });
    if (!record) return;
    try {
      sink.append(record);
    } catch (err) {
      request.log.error({ err, requestId: request.id }, 'cannot write the audit log');
    }
  };
  app.addHook('onRequest', async (request, reply) => {
    reply.raw.once('close', () => write(request, reply));
  });
  app.addHook('onResponse', async (request, reply) => write(request, reply));
});
