import { arch, hostname, platform } from 'node:os';
import type { Logger } from 'pino';
import { EDGEFLEET_VERSION, type AgentUpgradeFrame, type AgentUpgradeStatus } from '../../protocol/index.js';
import type { EdgePart } from '../part.js';
import type { Runtime } from '../runtime/runtime.js';
import type { CloudLink, CloudLinkEvents, LinkState } from './cloudLink.js';
import type { CloudUrlOrder } from './cloudUrls.js';
import type { LinkAuth } from './linkAuth.js';
import { NodeStatsSampler } from './nodeStats.js';

export interface CloudConnectionOptions {
  /** The cloudcore replicas' URLs (one, or several of one fleet): the link moves among them. */
  cloudUrls: readonly string[];
  /** shuffled (spread a fleet over the replicas) or listed (the first preferred). */
  cloudUrlOrder: CloudUrlOrder;
  node: string;
  dataDir: string;
  heartbeatSeconds: number;
  pongTimeoutSeconds: number;
  nodeStatsSeconds: number;
  log: Logger;
  /** Calls `use` once the node has its identity (from its files, or after joining). */
  withIdentity: (use: () => Promise<void>) => Promise<void>;
  /** The node's TLS material or credential, asked at every connect. */
  auth: () => LinkAuth | null;
  state: LinkState;
  /** Runs the operator requests (logs, exec) that arrive over the link. */
  runtime: Runtime;
  onPhase: (phase: CloudLinkEvents['phase'][0]) => void;
  /** A connect failed; `refusedIdentity`: the cloud answered 401 (expired, revoked or replaced identity). */
  onConnectFailed?: (refusedIdentity: boolean) => void;
  /** A sync frame was committed to the local database. */
  onDesired: (result: CloudLinkEvents['desired'][0]) => void;
  /** The cloud's desired agent version (edgecore/upgrade). */
  onAgentUpgrade?: (frame: AgentUpgradeFrame) => void;
  /** Route traffic from the cloud (devices/routes/). */
  onRouteFrame?: (frame: CloudLinkEvents['routeFrame'][0]) => void;
  /** The last agent upgrade status, carried from the link's first hello on. */
  upgradeStatus?: () => AgentUpgradeStatus | undefined;
}

/**
 * The edge's side of the cloud: once the node has a credential, the link to cloudcore and the
 * node's resource sampler that rides its heartbeats. Until then (no token yet, cloud not
 * reachable) `link` is undefined and the node keeps running what its database holds.
 */
export class CloudConnection implements EdgePart {
  readonly name = 'link';
  link: CloudLink | undefined;
  private nodeStats: NodeStatsSampler | undefined;
  private stopped = false;

  constructor(private readonly opts: CloudConnectionOptions) {}

  async start(): Promise<void> {
    await this.opts.withIdentity(() => this.connect());
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { opts } = this;
    this.nodeStats = new NodeStatsSampler({ dataDir: opts.dataDir, intervalMs: opts.nodeStatsSeconds * 1000, log: opts.log });
    await this.nodeStats.start();
    // Loaded only now (with ws): the cloud link is not on the cold-start path of the workloads.
    const { CloudLink } = await import('./cloudLink.js');
    const link = new CloudLink({
      cloudUrl: opts.cloudUrls,
      cloudUrlOrder: opts.cloudUrlOrder,
      node: opts.node,
      auth: opts.auth,
      state: opts.state,
      agent: { version: EDGEFLEET_VERSION, os: platform(), arch: arch(), hostname: hostname() },
      heartbeatMs: opts.heartbeatSeconds * 1000,
      pongTimeoutMs: opts.pongTimeoutSeconds * 1000,
      log: opts.log,
      runtime: opts.runtime,
      nodeStats: () => this.nodeStats?.take(),
    });
    link.on('phase', opts.onPhase);
    link.on('phase', (phase) => { if (phase === 'disconnected') opts.onConnectFailed?.(link.refusedIdentity); });
    link.on('desired', opts.onDesired);
    if (opts.onAgentUpgrade) link.on('agentUpgrade', opts.onAgentUpgrade);
    if (opts.onRouteFrame) link.on('routeFrame', opts.onRouteFrame);
    const upgrade = opts.upgradeStatus?.();
    if (upgrade) link.reportUpgrade(upgrade);
    this.link = link;
    link.start();
  }

  /** New outbox entries are committed: send them now rather than at the next tick. */
  notifyOutbox(): void { this.link?.notifyOutbox(); }

  /** Drops the link and connects again (after the sync cursor was reset, to replay everything). */
  reconnect(): void { this.link?.reconnect(); }

  async stop(): Promise<void> {
    this.stopped = true;
    this.nodeStats?.stop();
    await this.link?.stop();
  }
}
