import type { Logger } from 'pino';
import type { EdgeTunnel } from '../api/routes/nodeStreams.js';
import type { ServerTls } from '../pki/serverTls.js';
import type { TelemetryStore } from '../telemetry/telemetryStore.js';
import { FederatedTelemetry } from './federatedTelemetry.js';
import { PeerClient, type PeerClientOptions, type PeerTarget, type PeerTrust } from './peerClient.js';
import type { PeerPluginOptions } from './peerPlugin.js';
import { RoutedTunnel } from './routedTunnel.js';

/**
 * One replica's peer wiring in cluster mode, so server.ts has one call to make: the tunnel and
 * telemetry its operator API uses (through peers), and the options of the peer plugin it serves
 * (its own links and telemetry only).
 *
 *   const peers = clusterPeers({ selfId, replicaToken, trust: peerTrustOf(tls), hub, localTelemetry, directory, log });
 *   await app.register(apiPlugin, { ..., tunnel: peers.tunnel, telemetry: peers.telemetry });
 *   await app.register(peerPlugin, peers.plugin);
 *   // the Hub keeps appending to localTelemetry; on shutdown: peers.close()
 */

/** What the peers need of the cluster registries (sessions and replicas, in etcd). */
export interface ReplicaDirectory {
  /** The replica holding the node's session now, if any. */
  ownerOf(node: string): string | undefined | Promise<string | undefined>;
  /** A live replica's URL (its registry entry), if registered. */
  peerUrl(replicaId: string): string | undefined;
  /** The live replicas (this one may be among them: it is left out). */
  replicas(): PeerTarget[];
}

export interface ClusterPeersOptions {
  selfId: string;
  /** The cluster-wide replica token (a secret every replica reads from etcd). */
  replicaToken: string;
  trust: PeerTrust;
  /** The hub: this replica's own links. */
  hub: EdgeTunnel;
  /** This replica's telemetry.db; without it neither the API nor the peer routes answer telemetry. */
  localTelemetry?: TelemetryStore | undefined;
  directory: ReplicaDirectory;
  log: Logger;
  /** PeerClient's deadlines, when the defaults do not fit (tests shorten them). */
  deadlines?: Pick<PeerClientOptions, 'connectTimeoutMs' | 'requestTimeoutMs' | 'execGraceMs' | 'streamIdleMs'>;
}

/** Peers are trusted as edges trust cloudcore: the bundle it serves (the cluster CA, any operator chain). */
export function peerTrustOf(tls: Pick<ServerTls, 'bundlePem'> | undefined): PeerTrust {
  return tls ? { caPem: tls.bundlePem } : { plainHttp: true };
}

export function clusterPeers(opts: ClusterPeersOptions) {
  const { selfId, directory, log } = opts;
  const client = new PeerClient({ ...opts.deadlines, replicaToken: opts.replicaToken, trust: opts.trust });
  const tunnel = new RoutedTunnel({
    local: opts.hub, selfId, client, log,
    ownerOf: (node) => directory.ownerOf(node),
    peerUrl: (id) => directory.peerUrl(id),
  });
  const local = opts.localTelemetry;
  const telemetry = local && new FederatedTelemetry({
    local, client, log,
    peers: () => directory.replicas().filter((replica) => replica.id !== selfId),
  });
  const plugin: PeerPluginOptions = { replicaToken: opts.replicaToken, selfId, local: opts.hub, telemetry: opts.localTelemetry };
  return { client, tunnel, telemetry, plugin, close: () => client.close() };
}
