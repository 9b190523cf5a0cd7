import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ExecAnswerSchema, NameSchema, TelemetryListSchema } from '../../protocol/index.js';
import { bearerToken } from '../api/plumbing/auth.js';
import { ApiError, registerErrorHandling } from '../api/plumbing/errors.js';
import { zodSerializerCompiler, zodValidatorCompiler, type ZodTypeProvider } from '../api/plumbing/zodSchemas.js';
import { TelemetryQuery } from '../api/routes/deviceTwin.js';
import type { EdgeTunnel } from '../api/routes/nodeStreams.js';
import { BoundedLogWriter, type LogResponse } from '../api/views/logStream.js';
import type { TelemetryStore } from '../telemetry/telemetryStore.js';
import { PEER_LOG_HEARTBEAT_MS, PEER_PREFIX, PeerHeadersSchema, REQUEST_ID_HEADER, type PeerLogRecord } from './peerWire.js';

/**
 * The routes one replica answers for another, under `/peer/v1` on its normal HTTPS port, only
 * when registered (cluster mode): there is no separate internal port to leave open. Callers prove
 * they are replicas with the cluster-wide replica token. Every route works on THIS replica's own
 * edge links and telemetry only, never forwarding again, so a stale registry cannot make a loop.
 */

export interface PeerPluginOptions {
  /** The cluster-wide replica token (from etcd); a request must bear exactly it. */
  replicaToken: string;
  /** This replica's id, named in its 503s so the asking side can tell who answered. */
  selfId: string;
  /** The hub: links held by this replica only (never a RoutedTunnel). */
  local: EdgeTunnel;
  /** This replica's own telemetry file (never a FederatedTelemetry); without it telemetry routes answer 503. */
  telemetry?: TelemetryStore | undefined;
  /** How often a followed log stream says it is alive (PEER_LOG_HEARTBEAT_MS; tests shorten it). */
  heartbeatMs?: number;
}

/** A tunnel that forwards to other replicas says so, and peerPlugin refuses it. */
export const FORWARDS_TO_PEERS = Symbol('forwards to peers');

const NodeWorkloadParams = z.strictObject({ node: NameSchema, workload: NameSchema });
const DeviceParams = z.strictObject({ name: NameSchema });
const PeerLogsQuery = z.strictObject({
  tail: z.coerce.number().int().min(0).max(100_000).default(100),
  follow: z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1').default(false),
});
const PeerExecBody = z.strictObject({
  command: z.array(z.string()).min(1).max(256),
  timeoutSeconds: z.number().int().min(1).max(3600),
});

const digest = (s: string) => createHash('sha256').update(s).digest();

export async function peerPlugin(app: FastifyInstance, opts: PeerPluginOptions): Promise<void> {
  if (opts.replicaToken.length < 16) throw new Error('peerPlugin: the replica token must be a random secret of at least 16 characters');
  if (FORWARDS_TO_PEERS in opts.local) throw new Error('peerPlugin: give it the hub (this replica\'s own links), not a tunnel that forwards to peers');
  const expected = digest(opts.replicaToken);
  const { local, selfId, telemetry } = opts;

  await app.register(async (peer) => {
    registerErrorHandling(peer);
    peer.setValidatorCompiler(zodValidatorCompiler);
    peer.setSerializerCompiler(zodSerializerCompiler);
    peer.addHook('onRequest', async (request) => {
      const presented = bearerToken(request.headers.authorization);
      // Hashing first gives timingSafeEqual equal lengths; the compare always runs.
      const match = timingSafeEqual(digest(presented ?? ''), expected);
      if (presented === undefined || !match) {
        request.log.warn({ sourceAddress: request.ip, url: request.url }, 'peer request without the replica token refused');
        throw new ApiError(401, 'peer routes need the cluster replica token (Authorization: Bearer)');
      }
    });
    const api = peer.withTypeProvider<ZodTypeProvider>();

    async function channelFor(node: string) {
      const channel = await local.requestsFor(node);
      if (!channel) throw new ApiError(503, `node "${node}" is not connected to replica "${selfId}"`);
      return channel;
    }

    api.get('/nodes/:node/workloads/:workload/logs', { schema: { params: NodeWorkloadParams, querystring: PeerLogsQuery, headers: PeerHeadersSchema } }, async (request, reply) => {
      const { node, workload } = request.params;
      const requestId = request.headers[REQUEST_ID_HEADER];
      const channel = await channelFor(node);
      request.log.info({ node, workload, requestId, follow: request.query.follow }, 'peer log stream for a node held here');
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      raw.flushHeaders();
      const send = (record: PeerLogRecord) => raw.write(`${JSON.stringify(record)}\n`);
      // The same bound as the operator's stream: a slow link between replicas drops (and says so)
      // rather than making this replica queue a busy log without limit.
      const asRecords: LogResponse = {
        get writableLength() { return raw.writableLength; },
        get writableNeedDrain() { return raw.writableNeedDrain; },
        write: (text) => send({ lines: text.replace(/\n$/, '').split('\n') }),
        once: (event, listener) => raw.once(event, listener),
      };
      const writer = new BoundedLogWriter(asRecords);
      let ended = false;
      const heartbeat = setInterval(() => { if (raw.writableLength === 0) send({ lines: [] }); }, opts.heartbeatMs ?? PEER_LOG_HEARTBEAT_MS);
      raw.once('close', () => clearInterval(heartbeat));
      const cancel = await channel.logs(workload, request.query, {
        lines: (lines) => { if (!ended) writer.lines(lines); },
        end: (error) => {
          if (ended) return;
          ended = true;
          const marker = writer.pendingMarker();
          if (marker) asRecords.write(marker);
          clearInterval(heartbeat);
          send(error === undefined ? { end: true } : { end: true, error });
          raw.end();
        },
      }, requestId);
      // The asking replica closing (its operator cancelled) ends the edge's stream too.
      if (raw.destroyed) { ended = true; cancel(); return; }
      raw.on('close', () => { if (!ended) { ended = true; cancel(); } });
    });

    api.post('/nodes/:node/workloads/:workload/exec', { schema: { params: NodeWorkloadParams, body: PeerExecBody, headers: PeerHeadersSchema, response: { '2xx': ExecAnswerSchema } } }, async (request) => {
      const { node, workload } = request.params;
      const requestId = request.headers[REQUEST_ID_HEADER];
      const channel = await channelFor(node);
      request.log.info({ node, workload, requestId }, 'peer exec for a node held here');
      try {
        return await channel.exec(workload, request.body.command, request.body.timeoutSeconds, requestId);
      } catch (err) {
        throw new ApiError((err as { statusCode?: number }).statusCode ?? 502, (err as Error).message);
      }
    });

    function ownTelemetry(): TelemetryStore {
      if (!telemetry) throw new ApiError(503, `replica "${selfId}" keeps no telemetry`);
      return telemetry;
    }

    api.get('/devices/:name/telemetry', { schema: { params: DeviceParams, querystring: TelemetryQuery, response: { '2xx': TelemetryListSchema } } }, async (request) => {
      const { since, limit } = request.query;
      return { items: await ownTelemetry().query(request.params.name, { ...(since !== undefined ? { since } : {}), limit }) };
    });

    api.delete('/devices/:name/telemetry', { schema: { params: DeviceParams } }, async (request, reply) => {
      await ownTelemetry().drop(request.params.name);
      return reply.code(204).send();
    });
  }, { prefix: PEER_PREFIX });
}
