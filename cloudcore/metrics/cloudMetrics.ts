import type { FastifyInstance, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EDGEFLEET_VERSION, type Kind } from '../../protocol/index.js';
import { permit, type OperatorAuth } from '../api/plumbing/auth.js';
import type { HubCounters } from '../hub/nodeSession.js';
import type { Store } from '../store/store.js';

/**
 * cloudcore's `/metrics` (Prometheus text; every name is in docs/metrics.md). Hub and store
 * figures are read at scrape time; API latency is observed per request. Each CloudMetrics has
 * its own Registry (never prom-client's global one), so several cloudcores can run in one
 * process (tests, benchmarks).
 *
 * Auth: `/metrics` is an operator endpoint like the API: `Authorization: Bearer <token>`, the
 * readonly token is enough (Prometheus: `authorization: { credentials_file: readonly.token }`).
 */

/** What the metrics read from the hub: its counters and, per live session, what is unacked. */
export interface HubView {
  counters: HubCounters;
  /** Events dropped per node for being over its event budget (absent: no budget). */
  eventBudget?: { readonly droppedByNode: Readonly<Record<string, number>> };
  sessions: ReadonlyMap<string, { syncBacklog: { inFlight: boolean; pendingObjects: number } }>;
}

export interface CloudMetricsSources {
  hub: HubView;
  store: Store;
  /** The telemetry store's count of damaged samples it left out of answers. */
  telemetry?: { readonly unreadableSkipped: number };
  /** Connections and streams refused for being over their per-address caps. */
  refused?: { connections: { readonly refused: number }; streams: { readonly refused: number; readonly droppedLogLines: number } };
  /** With several replicas (store etcd): this replica's name and whether it leads now. */
  replica?: { readonly id: string; readonly isLeader: boolean };
}

/** Kinds read generically: a store (or build) that does not know the kind reports nothing. */
const ROLLOUT_KIND = 'Rollout';

export class CloudMetrics {
  readonly registry = new Registry();
  readonly requestDuration: Histogram<'route' | 'method' | 'status'>;
  /** Rollout phases seen so far: once seen, a phase keeps being reported (as 0) so its series does not vanish. */
  private readonly rolloutPhases = new Set<string>();

  constructor(private readonly sources: CloudMetricsSources, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const { hub, store } = sources;
    this.requestDuration = new Histogram({
      name: 'edgefleet_api_request_duration_seconds',
      help: 'Time to answer an HTTP request (operator API, hub join, /metrics), by route pattern, method and status. Watch and log streams are left out.',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    new Gauge({
      name: 'edgefleet_cloudcore_build_info', help: 'Always 1; the label carries the cloudcore version.', labelNames: ['version'], registers,
      collect() { this.set({ version: EDGEFLEET_VERSION }, 1); },
    });
    const replica = sources.replica;
    if (replica) {
      new Gauge({
        name: 'edgefleet_replica_leader', help: '1 while this replica is the elected leader (runs the controllers), else 0; the label names the replica.', labelNames: ['replica'], registers,
        collect() { this.set({ replica: replica.id }, replica.isLeader ? 1 : 0); },
      });
    }
    new Gauge({
      name: 'edgefleet_hub_sessions', help: 'Edge nodes connected to this cloudcore now.', registers,
      collect() { this.set(hub.sessions.size); },
    });
    // Counters copied from the hub's running totals at each scrape.
    const fromHub = (name: string, help: string, read: (c: HubCounters) => number) => new Counter({
      name, help, registers, collect() { this.reset(); this.inc(read(hub.counters)); },
    });
    const byType = (name: string, help: string, read: (c: HubCounters) => Record<string, number>) => new Counter({
      name, help, labelNames: ['type'], registers,
      collect() { this.reset(); for (const [type, n] of Object.entries(read(hub.counters))) this.inc({ type }, n); },
    });
    byType('edgefleet_hub_frames_received_total', 'WebSocket frames received from edges, by frame type ("invalid": did not parse).', (c) => c.framesInByType);
    byType('edgefleet_hub_frames_sent_total', 'WebSocket frames sent to edges, by frame type.', (c) => c.framesOutByType);
    fromHub('edgefleet_hub_received_bytes_total', 'Bytes of frames received from edges.', (c) => c.bytesIn);
    fromHub('edgefleet_hub_sent_bytes_total', 'Bytes of frames sent to edges.', (c) => c.bytesOut);
    fromHub('edgefleet_hub_frames_refused_total', 'Edge frames refused with an error frame (bad, forbidden or out of protocol).', (c) => c.refused);
    const { telemetry } = sources;
    if (telemetry) {
      new Counter({
        name: 'edgefleet_cloud_telemetry_unreadable_total', help: 'Stored device telemetry samples that could not be read back and were left out of answers, since cloudcore started.', registers,
        collect() { this.reset(); this.inc(telemetry.unreadableSkipped); },
      });
    }
    new Counter({
      name: 'edgefleet_hub_events_dropped_total', help: 'Events from edges dropped for being over their node\'s event budget, by node.', labelNames: ['node'], registers,
      collect() { this.reset(); for (const [node, n] of Object.entries(hub.eventBudget?.droppedByNode ?? {})) this.inc({ node }, n); },
    });
    const { refused } = sources;
    if (refused) {
      new Counter({
        name: 'edgefleet_cloud_connections_refused_total', help: 'Connections closed at accept for being over maxConnectionsPerAddress, and streams answered 429 for being over maxStreamsPerAddress.', labelNames: ['what'], registers,
        collect() { this.reset(); this.inc({ what: 'connection' }, refused.connections.refused); this.inc({ what: 'stream' }, refused.streams.refused); },
      });
      new Counter({
        name: 'edgefleet_api_log_lines_dropped_total', help: 'Workload log lines dropped because the reader of a log stream fell more than 1 MiB behind (each drop is also marked in the stream).', registers,
        collect() { this.reset(); this.inc(refused.streams.droppedLogLines); },
      });
    }
    fromHub('edgefleet_hub_snapshots_total', 'Full desired-state snapshots sent to edges (first connect, new epoch, compacted revision).', (c) => c.snapshots);
    new Gauge({
      name: 'edgefleet_hub_nodes_awaiting_ack', help: 'Connected nodes with desired state not acked yet (a sync frame in flight or changes queued).', registers,
      collect() {
        let n = 0;
        for (const s of hub.sessions.values()) if (s.syncBacklog.inFlight || s.syncBacklog.pendingObjects > 0) n++;
        this.set(n);
      },
    });
    new Gauge({
      name: 'edgefleet_hub_pending_objects', help: 'Objects queued for connected nodes behind a sync frame in flight (coalesced per object).', registers,
      collect() {
        let n = 0;
        for (const s of hub.sessions.values()) n += s.syncBacklog.pendingObjects;
        this.set(n);
      },
    });
    new Gauge({
      name: 'edgefleet_store_revision', help: 'Current global revision of the object store.', registers,
      async collect() { this.set(await store.revision()); },
    });
    const phases = this.rolloutPhases;
    new Gauge({
      name: 'edgefleet_rollouts', help: 'Rollout objects by status.phase.', labelNames: ['phase'], registers,
      async collect() {
        this.reset();
        const counts = await countRolloutsByPhase(store);
        for (const phase of counts.keys()) phases.add(phase);
        for (const phase of phases) this.set({ phase }, counts.get(phase) ?? 0);
      },
    });
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  render(): Promise<string> { return this.registry.metrics(); }

  get contentType(): string { return this.registry.contentType; }
}

/** Rollouts by phase, read generically; an unknown kind or a store error counts nothing. */
export async function countRolloutsByPhase(store: Store): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const listing = await store.list(ROLLOUT_KIND as Kind).catch(() => undefined);
  for (const obj of listing?.items ?? []) {
    const phase = phaseOf(obj);
    if (phase !== undefined) counts.set(phase, (counts.get(phase) ?? 0) + 1);
  }
  return counts;
}

function phaseOf(obj: unknown): string | undefined {
  if (typeof obj !== 'object' || obj === null || !('status' in obj)) return undefined;
  const status: unknown = obj.status;
  if (typeof status !== 'object' || status === null || !('phase' in status)) return undefined;
  return typeof status.phase === 'string' ? status.phase : undefined;
}

/**
 * Times every request fastify answers itself and serves `GET /metrics`. Register on the root
 * instance before the API plugin: hooks only reach routes registered after them. Replies the
 * route writes itself (hijacked watch and log streams) never pass onSend and are not timed:
 * their duration is how long the client kept watching.
 */
export function registerMetrics(app: FastifyInstance, opts: { metrics: CloudMetrics; auth: OperatorAuth }): void {
  const { metrics, auth } = opts;
  const answered = new WeakSet<FastifyRequest>();
  app.addHook('onSend', async (request) => { answered.add(request); });
  app.addHook('onResponse', async (request, reply) => {
    if (!answered.has(request)) return;
    const route = request.routeOptions.url ?? '<unmatched>';
    const status = String(reply.statusCode);
    const seconds = reply.elapsedTime / 1000;
    metrics.requestDuration.observe({ route, method: request.method, status }, seconds);
    request.log.debug({ method: request.method, route, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'api request');
  });
  app.get('/metrics', async (request, reply) => {
    permit(await auth.authenticate(request.headers.authorization), 'GET');
    const text = await metrics.render();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}
