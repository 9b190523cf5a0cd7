import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NameSchema, workloadName, ExecAnswerSchema } from '../../../protocol/index.js';
import type { ExecOutcome, LogSink } from '../../hub/operatorRequests.js';
import { ApiError } from '../plumbing/errors.js';
import { BoundedLogWriter } from '../views/logStream.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import type { ZodTypeProvider } from '../plumbing/zodSchemas.js';

/**
 * `logs` and `exec` for a workload on a node, carried over the node's existing link to the
 * cloud (no port opened on the edge). A node that is not connected answers 503 naming it.
 */

/** The request channel of one connected node: the hub's own, or one through the replica that holds the node. */
export interface EdgeChannel {
  /**
   * Starts a log stream into `sink`; returns its cancel function, or a promise of it when the stream
   * must first be opened elsewhere (another replica): a rejection then is the route's error answer.
   * `requestId` becomes the frame's id, so the edge's log and the audit log name the same request.
   */
  logs(workload: string, opts: { tail: number; follow: boolean }, sink: LogSink, requestId?: string): (() => void) | Promise<() => void>;
  exec(workload: string, command: string[], timeoutSeconds: number, requestId?: string): Promise<ExecOutcome>;
}

/**
 * What the routes need from the hub: the open request channel of a connected node. Asynchronous
 * because with several replicas finding the node's link may mean asking the cluster who holds it.
 */
export interface EdgeTunnel {
  requestsFor(node: string): Promise<EdgeChannel | undefined>;
}

const StreamParams = z.strictObject({ name: NameSchema, workload: NameSchema });
const LogsQuery = z.strictObject({
  tail: z.coerce.number().int().min(0).max(100_000).default(100),
  follow: z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1').default(false),
});
const ExecBody = z.strictObject({
  command: z.array(z.string()).min(1, 'give the command to run, e.g. ["cat", "/etc/hostname"]').max(256),
  timeoutSeconds: z.number().int().min(1).max(3600).default(30),
});

export async function nodeStreamRoutes(app: FastifyInstance, opts: ResourceRoutesOptions & { tunnel: EdgeTunnel }): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const { store, tunnel } = opts;

  /** 404 for an unknown node or a workload not bound to it, 503 for a node not connected now. */
  async function channelFor(node: string, workload: string) {
    const nodeObj = await getOrNotFound(store, 'Node', node);
    if (!(await store.get('Workload', workloadName(workload, node)))) {
      throw new ApiError(404, `workload "${workload}" is not bound to node "${node}"`);
    }
    const channel = await tunnel.requestsFor(node);
    if (!channel) {
      const since = nodeObj.status.phase === 'Offline' ? ` (Offline since ${nodeObj.status.since})` : '';
      throw new ApiError(503, `node "${node}" is not connected${since}; logs and exec need a live link`);
    }
    return channel;
  }

  api.get('/nodes/:name/workloads/:workload/logs', { schema: { params: StreamParams, querystring: LogsQuery } }, async (request, reply) => {
    const { name, workload } = request.params;
    const channel = await channelFor(name, workload);
    opts.watches.slots.take(request.raw.socket.remoteAddress, reply.raw);
    // Lines (or the end) that come before the response has started are held, then written in order:
    // a stream opened through another replica is only known to exist once that replica answered.
    let writer: BoundedLogWriter | undefined;
    const early: string[] = [];
    let earlyEnd: { error: string | undefined } | undefined;
    let ended = false;
    const finish = (error: string | undefined) => {
      if (ended || !writer) return;
      ended = true;
      const marker = writer.pendingMarker();
      if (marker) reply.raw.write(marker);
      if (error) reply.raw.write(`\n[edgefleet: ${error}]\n`);
      reply.raw.end();
    };
    const cancel = await channel.logs(workload, request.query, {
      lines: (lines) => {
        if (ended) return;
        if (writer) writer.lines(lines);
        else early.push(...lines);
      },
      end: (error) => {
        if (writer) finish(error);
        else earlyEnd ??= { error };
      },
    }, request.id);
    if (reply.raw.destroyed || request.raw.socket.destroyed) {
      // The client left while the stream was being opened: its close event has come and gone.
      cancel();
      reply.hijack();
      return;
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    raw.flushHeaders(); // a follow with tail=0 may write nothing for a long time; the client sees 200 now
    // A slow reader gets a bounded buffer and a marker for what it missed (views/logStream.ts).
    writer = new BoundedLogWriter(raw, undefined, (count) => { opts.watches.slots.droppedLogLines += count; });
    if (early.length > 0) writer.lines(early.splice(0));
    if (earlyEnd) finish(earlyEnd.error);
    request.raw.on('close', () => { if (!ended) { ended = true; cancel(); } });
  });

  api.post('/nodes/:name/workloads/:workload/exec', { schema: { params: StreamParams, body: ExecBody, response: { '2xx': ExecAnswerSchema } } }, async (request) => {
    const { name, workload } = request.params;
    const channel = await channelFor(name, workload);
    try {
      return await channel.exec(workload, request.body.command, request.body.timeoutSeconds, request.id);
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode ?? 502;
      throw new ApiError(status, (err as Error).message);
    }
  });
}
