import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  LINK_FEATURES, nodeRouteName, type AppGrantStatus, type CloudFrame, type EdgeFrame, type HelloFrame, type NodePublishRequest, type NodeRoute, type PublishRequestFrame, type RouteCounters,
} from '../../protocol/index.js';
import type { Store } from '../store/store.js';
import { StoreError } from '../store/store.js';
import type { RoutedMessages } from '../telemetry/routedMessages.js';

type RouteFrame = Extract<EdgeFrame, { type: 'routed' | 'routeStatus' | 'publishResult' }>;

/** Where a node session hands route frames (RouteTraffic). */
export interface RouteFrameSink {
  onFrame(node: string, frame: RouteFrame, reply: (frame: CloudFrame) => void): void;
}

/** Whether an edge takes NodeRoutes and route frames: its hello lists the `routes` feature. */
export function takesRoutes(hello: HelloFrame | undefined): boolean {
  return hello?.features?.includes(LINK_FEATURES.routes) === true;
}

/** A node's NodeRoutes, or none (at the store's revision) for an edge older than routes. */
export async function nodeRoutesFor(store: Store, node: string, takes: boolean): Promise<{ items: NodeRoute[]; revision: number }> {
  if (takes) return store.list('NodeRoute', { node });
  return { items: [], revision: await store.revision() };
}

/** How long an operator's publish waits for the edge's answer. */
const PUBLISH_TIMEOUT_MS = 10_000;

export interface RouteCountersSeen { node: string; counters: Omit<RouteCounters, 'route'>; observedAt: string }

/**
 * The cloud's side of routes on the link: stores routed messages (acking only what is stored,
 * and only for a cloud route bound to the sending node), keeps each node's last route counters
 * and app grant counters in memory for the API, and carries operator publishes to a node and their answers.
 */
export class RouteTraffic implements RouteFrameSink {
  /** node → route → last counters (in memory: the edge sends them again after a restart). */
  private readonly seen = new Map<string, Map<string, RouteCountersSeen>>();
  private readonly publishes = new Map<string, { node: string; settle: (error?: string) => void }>();
  /** node → its app grants and their counters, from the same frames (absent: none heard since start). */
  private readonly grants = new Map<string, { items: AppGrantStatus[]; omitted: number; observedAt: string }>();
  /** node + route → the routed frames being stored, in arrival order. */
  private readonly storing = new Map<string, Promise<void>>();
  /** node + route → the first seq of a batch that could not be stored: nothing after it is acked until it comes again. */
  private readonly gaps = new Map<string, number>();

  constructor(private readonly opts: { store: Store; messages: RoutedMessages; log: Logger; sendTo: (node: string, frame: PublishRequestFrame) => boolean }) {}

  onFrame(node: string, frame: RouteFrame, reply: (frame: CloudFrame) => void): void {
    if (frame.type === 'routeStatus') {
      const observedAt = new Date().toISOString();
      this.seen.set(node, new Map(frame.routes.map(({ route, ...counters }) => [route, { node, counters, observedAt }])));
      if (frame.appGrants !== undefined) this.grants.set(node, { items: frame.appGrants, omitted: frame.appGrantsOmitted ?? 0, observedAt });
      return;
    }
    if (frame.type === 'publishResult') {
      const waiting = this.publishes.get(frame.id);
      if (waiting?.node === node) waiting.settle(frame.error);
      return;
    }
    // One node's routed frames are stored in arrival order: an edge keeps several batches in
    // flight and takes each ack as confirming every batch before it.
    const key = `${node}\u0000${frame.route}`;
    const previous = this.storing.get(key) ?? Promise.resolve();
    const next = previous.then(async () => {
      const gap = this.gaps.get(key);
      // After a batch that could not be stored, later ones are not acked either (that would
      // confirm the lost one) until the edge sends again from there, as it does when no ack comes.
      if (gap !== undefined && frame.messages[0]!.seq > gap) return;
      this.gaps.delete(key);
      try {
        const ack = await this.store(node, frame);
        if (ack !== null) reply(ack);
      } catch (err) {
        this.gaps.set(key, frame.messages[0]!.seq);
        this.opts.log.error({ node, route: frame.route, err: (err as Error).message }, 'could not store routed messages');
      }
    });
    this.storing.set(key, next);
    void next.finally(() => { if (this.storing.get(key) === next) this.storing.delete(key); });
  }

  private async store(node: string, frame: Extract<RouteFrame, { type: 'routed' }>): Promise<CloudFrame | null> {
    const binding = await this.opts.store.get('NodeRoute', nodeRouteName(frame.route, node));
    if (!binding || binding.spec.nodeName !== node || binding.spec.destination.type !== 'cloud') {
      this.opts.log.warn({ node, route: frame.route }, 'routed messages for a route not bound to this node (or not to the cloud): refused');
      return { type: 'error', code: 'forbidden', field: 'route', message: `route "${frame.route}" is not a cloud route of node "${node}"; messages not stored` };
    }
    this.opts.messages.append(node, frame);
    return { type: 'routedAck', route: frame.route, seq: frame.messages[frame.messages.length - 1]!.seq };
  }

  /** The counters each bound node last reported for `route`. */
  countersOf(route: string): Map<string, RouteCountersSeen> {
    const out = new Map<string, RouteCountersSeen>();
    for (const [node, routes] of this.seen) {
      const seen = routes.get(route);
      if (seen) out.set(node, seen);
    }
    return out;
  }

  /** The app grants `node` last reported to this replica, or null when it has not since start. */
  grantsOf(node: string): { items: AppGrantStatus[]; omitted: number; observedAt: string } | null {
    return this.grants.get(node) ?? null;
  }

  /** An operator's publish into a node's broker; resolves when the edge published it. 503 if the node is not linked here. */
  publish(node: string, request: NodePublishRequest): Promise<void> {
    const id = randomUUID();
    const payload = request.encoding === 'base64' ? request.payload : Buffer.from(request.payload, 'utf8').toString('base64');
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => settle(`node "${node}" did not answer within ${PUBLISH_TIMEOUT_MS / 1000} s`), PUBLISH_TIMEOUT_MS);
      const settle = (error?: string) => {
        clearTimeout(timer);
        this.publishes.delete(id);
        if (error === undefined) resolve();
        else reject(new StoreError(`publish to ${request.topic} on node "${node}": ${error}`, 502));
      };
      this.publishes.set(id, { node, settle });
      const sent = this.opts.sendTo(node, { type: 'publishRequest', id, topic: request.topic, payload, qos: request.qos, retain: request.retain });
      if (!sent) {
        clearTimeout(timer);
        this.publishes.delete(id);
        reject(new StoreError(`node "${node}" is not connected (to this cloudcore): nothing published`, 503));
      }
    });
  }
}
