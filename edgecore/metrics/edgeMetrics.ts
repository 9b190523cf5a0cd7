import type { Counter, Gauge, Registry } from 'prom-client';
import type { EdgeStatus } from '../../protocol/edgeStatus.js';
import { WorkloadStateSchema } from '../../protocol/index.js';

/**
 * edgecore's `/metrics` (Prometheus text; every name is listed in docs/metrics.md). Values are
 * read at scrape time from the same snapshot the status page shows, plus a few counters only
 * the agent keeps, so the page, `edgectl local status` and Prometheus never disagree.
 *
 * prom-client is loaded on the first scrape, not at start: a node nobody scrapes pays nothing
 * for it in memory or cold-start time. Each EdgeMetrics has its own Registry (never the global
 * one), so tests can run several in one process.
 */

/** Counters the agent keeps that are not part of /status. */
export interface EdgeCounters {
  /** Twin reported sections handed to the outbox (one per changed or refreshed twin). */
  twinUpdates: number;
  /** Telemetry batches handed to the outbox. */
  telemetryBatches: number;
}

export interface EdgeObservation {
  status: Omit<EdgeStatus, 'workloads'> & { workloads: Omit<EdgeStatus['workloads'][number], 'recentLogs'>[] };
  counters: EdgeCounters;
}

export type ObservationSource = () => EdgeObservation | Promise<EdgeObservation>;

type PromClient = typeof import('prom-client');

export class EdgeMetrics {
  private current: EdgeObservation | undefined;

  private constructor(readonly registry: Registry, private readonly source: ObservationSource) {}

  /** Builds the registry (loading prom-client now) and registers every metric. */
  static async create(source: ObservationSource, opts: { defaultMetrics?: boolean } = {}): Promise<EdgeMetrics> {
    const prom: PromClient = await import('prom-client');
    const registry = new prom.Registry();
    const metrics = new EdgeMetrics(registry, source);
    metrics.register(prom);
    if (opts.defaultMetrics ?? true) prom.collectDefaultMetrics({ register: registry });
    return metrics;
  }

  /** The exposition text; reads one fresh observation for the whole scrape. */
  async render(): Promise<string> {
    this.current = await this.source();
    try {
      return await this.registry.metrics();
    } finally {
      this.current = undefined;
    }
  }

  get contentType(): string { return this.registry.contentType; }

  private register(prom: PromClient): void {
    const registers = [this.registry];
    const obs = (): EdgeObservation => {
      if (!this.current) throw new Error('edge metrics read outside a scrape');
      return this.current;
    };
    const gauge = (name: string, help: string, read: (o: EdgeObservation, g: Gauge) => void, labelNames: string[] = []) =>
      new prom.Gauge({ name, help, labelNames, registers, collect() { this.reset(); read(obs(), this); } });
    // A counter whose running total lives elsewhere (link stats, the outbox, the broker): each
    // scrape copies the current total in. It never goes down while edgecore runs.
    const counter = (name: string, help: string, read: (o: EdgeObservation, c: Counter) => void, labelNames: string[] = []) =>
      new prom.Counter({ name, help, labelNames, registers, collect() { this.reset(); read(obs(), this); } });

    gauge('edgefleet_edge_build_info', 'Always 1; labels carry the node name and the edgecore version.',
      (o, g) => g.set({ node: o.status.node, version: o.status.edgecore.version }, 1), ['node', 'version']);

    gauge('edgefleet_edge_link_connected', '1 while the cloud link is up (welcome received), else 0.',
      (o, g) => g.set(o.status.link.state === 'connected' ? 1 : 0));
    gauge('edgefleet_edge_link_down_seconds', 'Seconds since the cloud link went down; 0 while it is up.',
      (o, g) => g.set(o.status.link.downForSeconds ?? 0));
    gauge('edgefleet_edge_link_up_seconds', 'Seconds since the cloud link came up; 0 while it is down.',
      (o, g) => g.set(secondsBetween(o.status.link.connectedSince, o.status.generatedAt)));
    counter('edgefleet_edge_link_connects_total', 'Times the cloud link came up since edgecore started.',
      (o, c) => c.inc(o.status.link.stats?.connects ?? 0));
    counter('edgefleet_edge_link_sync_frames_total', 'Desired-state frames received from the cloud and committed.',
      (o, c) => c.inc(o.status.link.stats?.syncFrames ?? 0));
    counter('edgefleet_edge_link_received_bytes_total', 'Bytes of frames received on the cloud link.',
      (o, c) => c.inc(o.status.link.stats?.bytesIn ?? 0));
    counter('edgefleet_edge_link_sent_bytes_total', 'Bytes of frames sent on the cloud link.',
      (o, c) => c.inc(o.status.link.stats?.bytesOut ?? 0));
    gauge('edgefleet_edge_synced_revision', 'Cloud store revision of the desired state committed on this node.',
      (o, g) => g.set(o.status.sync.lastRevision));

    gauge('edgefleet_edge_outbox_entries', 'Upstream entries (status, twins, events, telemetry) waiting for the cloud to ack them.',
      (o, g) => g.set(o.status.outbox.depth));
    counter('edgefleet_edge_outbox_dropped_total', 'Events and telemetry batches dropped by the outbox spool limits (over the life of the edge database).',
      (o, c) => c.inc(o.status.outbox.dropped));

    gauge('edgefleet_edge_workloads', 'Workloads on this node by state (Unknown: not started by the runtime yet).', (o, g) => {
      const counts = new Map<string, number>([...WorkloadStateSchema.options, 'Unknown'].map((s) => [s, 0]));
      for (const w of o.status.workloads) {
        const state = w.status?.state ?? 'Unknown';
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      for (const [state, n] of counts) g.set({ state }, n);
    }, ['state']);
    counter('edgefleet_edge_workload_restarts_total', 'Restarts of each workload by its restart policy (the runtime\'s count for the current generation).',
      (o, c) => { for (const w of o.status.workloads) c.inc({ workload: w.name }, w.status?.restarts ?? 0); }, ['workload']);

    gauge('edgefleet_edge_mqtt_clients', 'MQTT clients (devices, mappers) connected to the edge broker.',
      (o, g) => g.set(o.status.mqtt?.clients ?? 0));
    counter('edgefleet_edge_mqtt_messages_received_total', 'PUBLISH packets from MQTT clients (accepted or refused).',
      (o, c) => c.inc(o.status.mqtt?.messages.received ?? 0));
    counter('edgefleet_edge_mqtt_messages_refused_total', 'Client messages refused: not allowed for that client, or a payload that does not parse.',
      (o, c) => c.inc(o.status.mqtt?.messages.refused ?? 0));
    counter('edgefleet_edge_mqtt_messages_sent_total', 'Messages the broker delivered to MQTT clients.',
      (o, c) => c.inc(o.status.mqtt?.messages.sent ?? 0));
    counter('edgefleet_edge_device_commits_total', 'SQLite transactions of the device hub (group commits of device messages and status changes).',
      (o, c) => c.inc(o.status.mqtt?.commits?.transactions ?? 0));
    counter('edgefleet_edge_device_commit_items_total', 'Pieces of work those transactions carried (device messages, online/offline changes, deferred twin releases).',
      (o, c) => c.inc(o.status.mqtt?.commits?.items ?? 0));
    counter('edgefleet_edge_device_commit_rollbacks_total', 'Device hub transactions rolled back (their publishers got no PUBACK and resend).',
      (o, c) => c.inc(o.status.mqtt?.commits?.rollbacks ?? 0));
    counter('edgefleet_edge_mqtt_unreadable_rows_total', 'Stored broker packets (retained, queued, QoS 2, wills) that could not be read back and were dropped.',
      (o, c) => c.inc(o.status.mqtt?.unreadableRows ?? 0));
    counter('edgefleet_edge_mqtt_queued_dropped_total', 'Queued messages of persistent MQTT sessions dropped (oldest first) for the per-session queue limit.',
      (o, c) => c.inc(o.status.mqtt?.queuedDropped ?? 0));
    counter('edgefleet_edge_app_mqtt_messages_total', 'Messages of each app identity on the edge broker: published (accepted), delivered to it, refused (publishes and subscriptions outside its grant).',
      (o, c) => {
        for (const g of o.status.mqtt?.appGrants ?? []) {
          for (const kind of ['published', 'delivered', 'refused'] as const) c.inc({ workload: g.workload, kind }, g[kind]);
        }
      }, ['workload', 'kind']);
    gauge('edgefleet_edge_devices', 'Devices on this node by connection state.', (o, g) => {
      const devices = o.status.mqtt?.devices ?? [];
      g.set({ online: 'true' }, devices.filter((d) => d.online).length);
      g.set({ online: 'false' }, devices.filter((d) => !d.online).length);
    }, ['online']);
    counter('edgefleet_edge_twin_updates_total', 'Device twin reported sections queued for the cloud.',
      (o, c) => c.inc(o.counters.twinUpdates));
    counter('edgefleet_edge_telemetry_batches_total', 'Device telemetry batches queued for the cloud.',
      (o, c) => c.inc(o.counters.telemetryBatches));

    gauge('edgefleet_edge_data_disk_available_bytes', 'Bytes available to edgecore on the file system of its data directory.',
      (o, g) => { if (o.status.host.disk) g.set(o.status.host.disk.availableBytes); });
    gauge('edgefleet_edge_data_disk_size_bytes', 'Size of the file system of the data directory.',
      (o, g) => { if (o.status.host.disk) g.set(o.status.host.disk.totalBytes); });
    gauge('edgefleet_edge_memory_available_bytes', 'Memory available on the node (MemAvailable).',
      (o, g) => g.set(o.status.host.memory.availableBytes));
  }
}

/** Seconds from `fromIso` to `toIso`, 0 when `fromIso` is null or later. */
export function secondsBetween(fromIso: string | null, toIso: string): number {
  if (fromIso === null) return 0;
  return Math.max(0, (Date.parse(toIso) - Date.parse(fromIso)) / 1000);
}
