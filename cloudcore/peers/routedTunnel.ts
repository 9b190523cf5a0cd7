import type { Logger } from 'pino';
import { ApiError } from '../http/apiError.js';
import type { EdgeChannel, EdgeTunnel } from '../api/routes/nodeStreams.js';
import type { PeerClient, PeerTarget } from './peerClient.js';
import { FORWARDS_TO_PEERS } from './peerPlugin.js';

/**
 * The operator API's EdgeTunnel with several replicas: a node whose link this replica holds is
 * served by the hub; a node held by another replica (the session registry says which) gets a
 * channel whose logs and exec go through that replica's `/peer/v1` routes; any other node is
 * not connected (the route's 503). The peer answers from its own links only, so a registry
 * that is briefly wrong gives a 503, never a loop.
 */

export interface RoutedTunnelOptions {
  /** The hub: links this replica holds. */
  local: EdgeTunnel;
  selfId: string;
  /** Which replica holds the node's session now (the registry in etcd), if any. */
  ownerOf(node: string): string | undefined | Promise<string | undefined>;
  /** Where a live replica answers (its registry entry's URL), if it is registered. */
  peerUrl(replicaId: string): string | undefined;
  client: PeerClient;
  log: Logger;
}

export class RoutedTunnel implements EdgeTunnel {
  readonly [FORWARDS_TO_PEERS] = true;

  constructor(private readonly opts: RoutedTunnelOptions) {}

  async requestsFor(node: string): Promise<EdgeChannel | undefined> {
    const here = await this.opts.local.requestsFor(node);
    if (here) return here;
    const owner = await this.opts.ownerOf(node);
    // Held "by us" without a local link: the registry entry outlived the session; not connected.
    if (owner === undefined || owner === this.opts.selfId) return undefined;
    const url = this.opts.peerUrl(owner);
    if (url === undefined) {
      throw new ApiError(503, `node "${node}" is held by replica "${owner}", which is not registered (gone?); retry once the node has reconnected`);
    }
    return this.throughPeer({ id: owner, url }, node);
  }

  private throughPeer(peer: PeerTarget, node: string): EdgeChannel {
    const { client, log } = this.opts;
    return {
      logs: async (workload, query, sink, requestId) => {
        try {
          return await client.logs(peer, node, workload, query, sink, requestId);
        } catch (err) {
          throw asApiError(err, log, peer, node);
        }
      },
      exec: async (workload, command, timeoutSeconds, requestId) => {
        try {
          return await client.exec(peer, node, workload, command, timeoutSeconds, requestId);
        } catch (err) {
          throw asApiError(err, log, peer, node);
        }
      },
    };
  }
}

function asApiError(err: unknown, log: Logger, peer: PeerTarget, node: string): ApiError {
  const status = (err as { statusCode?: number }).statusCode ?? 502;
  const message = (err as Error).message;
  if (status >= 500) log.warn({ replica: peer.id, node, status, err: message }, 'a request forwarded to the replica holding the node failed');
  return new ApiError(status, message);
}
