import type { EdgeStatus } from '../../protocol/edgeStatus.js';
import { EDGEFLEET_VERSION } from '../../protocol/index.js';
import type { EdgeCounters, EdgeMetrics } from '../metrics/edgeMetrics.js';
import type { EdgePart } from '../part.js';
import { hostStatus } from './hostStatus.js';
import { StatusServer, type LocalRoute } from './statusServer.js';
import { buildEdgeStatus, LinkTimes, LogTailCache, withRecentLogs, type StatusParts } from './statusSnapshot.js';

/** Where each part of `/status` comes from: read at every request, so it is never stale. */
export interface StatusSources {
  node: string;
  cloudUrl: string;
  /** The configured replicas' URLs (the link shows which one it is on). */
  cloudUrls?: readonly string[];
  dataDir: string;
  link: () => StatusParts['link'];
  joinError: () => string | null;
  identity: () => StatusParts['identity'];
  sync: () => StatusParts['sync'];
  outbox: () => StatusParts['outbox'];
  mqtt: () => EdgeStatus['mqtt'];
  workloads: () => StatusParts['workloads'];
  readLogs: (name: string, tail: number) => Promise<string[]>;
  /** The previous agent version and the last upgrade attempt (edgecore/upgrade). */
  upgrade?: () => EdgeStatus['upgrade'];
  /** The routes' counters (devices/routes/). */
  routes?: () => EdgeStatus['routes'];
  /** Counters for /metrics that are not part of /status. */
  counters: () => EdgeCounters;
}

export interface LocalApiOptions {
  host: string;
  port: number;
  /** When this edgecore process started (ms). */
  startedAt: number;
  /** HTTP Basic password (required by StatusServer.listen on a non-loopback host). */
  password?: string;
  sources: StatusSources;
}

/**
 * The node's local API and status page (`/status`, `/metrics`, the page, and routes other parts
 * add, such as the mappers' device list): what a field engineer at the node reads, with or
 * without the cloud.
 */
export class LocalApi implements EdgePart {
  readonly name = 'local-api';
  readonly linkTimes = new LinkTimes();
  /** http://host:port once listening. */
  url = '';
  private readonly server: StatusServer;
  private readonly logTails: LogTailCache;
  private metrics: Promise<EdgeMetrics> | undefined;

  constructor(private readonly opts: LocalApiOptions) {
    this.logTails = new LogTailCache((name, tail) => opts.sources.readLogs(name, tail), 10_000);
    this.server = new StatusServer({
      snapshot: () => this.snapshot({ logLines: 5 }),
      metrics: () => this.renderMetrics(),
      realm: `edgecore ${opts.sources.node}`,
      ...(opts.password !== undefined ? { password: opts.password } : {}),
    });
  }

  addRoute(route: LocalRoute): void { this.server.addRoute(route); }

  port(): number { return Number(new URL(this.url).port); }

  async start(): Promise<void> {
    this.url = await this.server.listen(this.opts.host, this.opts.port);
  }

  /** The `/status` answer (protocol/edgeStatus.ts); `logLines: 0` skips reading the workloads' logs. */
  async snapshot(opts: { logLines: number } = { logLines: 0 }): Promise<EdgeStatus> {
    const src = this.opts.sources;
    const status = buildEdgeStatus({
      node: src.node,
      version: EDGEFLEET_VERSION,
      cloudUrl: src.cloudUrl,
      ...(src.cloudUrls ? { cloudUrls: src.cloudUrls } : {}),
      startedAt: this.opts.startedAt,
      now: Date.now(),
      pid: process.pid,
      link: src.link(),
      linkTimes: this.linkTimes,
      joinError: src.joinError(),
      identity: src.identity(),
      sync: src.sync(),
      outbox: src.outbox(),
      mqtt: src.mqtt(),
      workloads: src.workloads(),
      host: hostStatus(src.dataDir),
      upgrade: src.upgrade?.(),
      routes: src.routes?.(),
    });
    if (opts.logLines === 0) return status;
    this.logTails.retain(new Set(status.workloads.map((w) => w.name)));
    return withRecentLogs(status, (name, tail) => this.logTails.tail(name, tail), opts.logLines);
  }

  /** `/metrics`: prom-client is loaded on the first scrape only (see edgeMetrics.ts). */
  private async renderMetrics(): Promise<string> {
    this.metrics ??= import('../metrics/edgeMetrics.js').then(({ EdgeMetrics }) =>
      EdgeMetrics.create(async () => ({ status: await this.snapshot(), counters: { ...this.opts.sources.counters() } })));
    return (await this.metrics).render();
  }

  async stop(): Promise<void> {
    await this.server.close();
  }
}
