import type { AedesPublishPacket } from 'aedes';
import {
  nodeRouteName, operatorPublishProblem, topicMatches, type NodeRoute, type PublishRequestFrame, type RouteCounters,
} from '../../../protocol/index.js';
import { CloudRouteDestination, type RouteUplink } from './cloudDestination.js';
import { MqttRouteDestination } from './mqttDestination.js';
import { RoutePump, type RouteDestinationPort } from './routePump.js';
import type { RouteQueue } from './routeQueue.js';

/** What routing reads of a message. */
export type RoutedPacket = Pick<AedesPublishPacket, 'topic' | 'payload'>;

/** The edge broker as the routes use it: one in-process subscription, and publishes from the cloud. */
export interface RouteBus {
  subscribe(filter: string, deliver: (packet: AedesPublishPacket, done: () => void) => void): Promise<void>;
  unsubscribe(filter: string, deliver: (packet: AedesPublishPacket, done: () => void) => void): Promise<void>;
  publish(topic: string, payload: Buffer, qos: 0 | 1, retain: boolean): Promise<void>;
  /** A message the broker took but refused to pass on (a device's malformed report): never routed. */
  refused(packet: RoutedPacket): boolean;
  /**
   * Asks `gate` about every client publish the broker accepted, BEFORE the publisher's PUBACK:
   * aedes acknowledges a QoS 1 publish before it hands it to subscribers, so a subscription alone
   * would queue a routed message after its sender was told it was delivered (a crash in between
   * lost it). Null removes the gate.
   */
  setGate(gate: ((packet: RoutedPacket, done: () => void) => void) | null): void;
}

export interface RouteLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

interface RunningRoute { spec: NodeRoute; fingerprint: string; pump: RoutePump; cloud?: CloudRouteDestination }

/** Every message on the broker (aedes does not give `$` topics to `#`): routes match their own filters. */
const ALL = '#';

/**
 * Runs the node's routes (NodeRoute objects from the cloud): one in-process subscription to the
 * edge broker, each message matching a route's filters committed to that route's queue before
 * the subscription returns (so before the publisher's PUBACK), then forwarded by the route's
 * pump. A route's failure (unreachable broker, bad password) shows in its counters and log;
 * it never stops the broker or the other routes.
 */
export class RouteEngine {
  private readonly routes = new Map<string, RunningRoute>();
  private subscribed = false;
  /** Messages handed over by the broker and not committed yet (group commit: one fsync for all of them). */
  private arrived: { packet: RoutedPacket; done: () => void }[] = [];
  /** Payloads queued at the gate (aedes' copies of a packet share its payload buffer): the subscription skips them. */
  private readonly gated = new WeakSet<Buffer>();
  /** Client publishes, before their PUBACK: queued (if a route wants them) before the publisher hears back. */
  private readonly gate = (packet: RoutedPacket, done: () => void): void => {
    if (!this.wanted(packet.topic)) return done();
    if (Buffer.isBuffer(packet.payload)) this.gated.add(packet.payload);
    this.arrive(packet, done);
  };
  /** Everything else the broker carries (the edge's own publishes, the cloud's into the broker). */
  private readonly deliver = (packet: AedesPublishPacket, done: () => void): void => {
    // Queued at the gate already, or wanted by no route (the gate let it through): nothing to commit.
    if ((Buffer.isBuffer(packet.payload) && this.gated.has(packet.payload)) || !this.wanted(packet.topic)) return done();
    this.arrive(packet, done);
  };

  private wanted(topic: string): boolean {
    for (const running of this.routes.values()) if (running.spec.spec.source.topics.some((f) => topicMatches(f, topic))) return true;
    return false;
  }

  private arrive(packet: RoutedPacket, done: () => void): void {
    this.arrived.push({ packet, done });
    // Everything the broker hands over in this turn of the event loop goes into one transaction;
    // `done` (and so the publisher's PUBACK) only after it committed.
    if (this.arrived.length === 1) setImmediate(() => this.commitArrived());
  };

  constructor(private readonly opts: { node: string; queue: RouteQueue; bus: RouteBus; uplink: RouteUplink; log: RouteLog }) {}

  /** Applies the node's desired routes: new ones start, changed ones restart (their queue stays), removed ones go with their queue. */
  async setRoutes(desired: readonly NodeRoute[]): Promise<void> {
    const wanted = new Map(desired.map((r) => [r.spec.route, r]));
    for (const [name, running] of [...this.routes]) {
      const next = wanted.get(name);
      if (next && fingerprintOf(next) === running.fingerprint) continue;
      this.routes.delete(name);
      await running.pump.close();
      if (!next) this.opts.log.info({ route: name }, 'route removed');
    }
    for (const name of this.opts.queue.routes()) if (!wanted.has(name)) this.opts.queue.purge(name);
    for (const [name, spec] of wanted) {
      if (this.routes.has(name)) continue;
      this.routes.set(name, this.start(spec));
      this.opts.log.info({ route: name, destination: spec.spec.destination.type, topics: spec.spec.source.topics }, 'route running');
    }
    if (this.routes.size > 0 && !this.subscribed) {
      this.subscribed = true;
      this.opts.bus.setGate(this.gate);
      await this.opts.bus.subscribe(ALL, this.deliver);
    } else if (this.routes.size === 0 && this.subscribed) {
      this.subscribed = false;
      this.opts.bus.setGate(null);
      await this.opts.bus.unsubscribe(ALL, this.deliver);
    }
    for (const running of this.routes.values()) running.pump.kick();
  }

  private start(route: NodeRoute): RunningRoute {
    const name = route.spec.route;
    const { queue, uplink, log } = this.opts;
    let cloud: CloudRouteDestination | undefined;
    let destination: RouteDestinationPort;
    let pump: RoutePump | undefined;
    const dest = route.spec.destination;
    if (dest.type === 'cloud') {
      cloud = new CloudRouteDestination(name, () => queue.stream(name), uplink);
      destination = cloud;
    } else if (route.spec.resolved.missing.length > 0) {
      destination = new UnusableDestination(`the route's ${route.spec.resolved.missing.join(', ')} does not exist: messages wait in the queue`);
    } else {
      destination = new MqttRouteDestination(dest, {
        clientId: `edgefleet-${nodeRouteName(name, this.opts.node)}`.slice(0, 128),
        ...(route.spec.resolved.password !== undefined ? { password: route.spec.resolved.password } : {}),
        onReady: () => pump?.wake(),
        warn: (msg) => log.warn({ route: name }, msg),
      });
    }
    pump = new RoutePump(name, route.spec.limits, queue, destination, (route, error) => log.warn({ route, error }, 'route cannot forward'));
    return { spec: route, fingerprint: fingerprintOf(route), pump, ...(cloud ? { cloud } : {}) };
  }

  private commitArrived(): void {
    const batch = this.arrived;
    this.arrived = [];
    try {
      this.opts.queue.inOneCommit(() => { for (const { packet } of batch) this.onMessage(packet); });
    } catch (err) {
      // The commit itself failed (a full disk): these messages are not queued. Said, not hidden.
      this.opts.log.warn({ messages: batch.length, err: (err as Error).message }, 'routes could not queue messages');
    } finally {
      for (const { done } of batch) done();
    }
    for (const running of this.routes.values()) running.pump.kick();
  }

  private onMessage(packet: RoutedPacket): void {
    if (this.opts.bus.refused(packet)) return;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const t = new Date().toISOString();
    for (const [name, running] of this.routes) {
      if (!running.spec.spec.source.topics.some((f) => topicMatches(f, packet.topic))) continue;
      try {
        const result = this.opts.queue.enqueue(name, running.spec.spec.limits, packet.topic, payload, t);
        if (!result.queued) {
          this.opts.log.warn({ route: name, topic: packet.topic, bytes: payload.length, maxMessageBytes: running.spec.spec.limits.maxMessageBytes },
            `route "${name}": message on ${packet.topic} refused: ${payload.length} bytes is over maxMessageBytes (${running.spec.spec.limits.maxMessageBytes})`);
        } else if (result.droppedOldest > 0) {
          this.opts.log.warn({ route: name, dropped: result.droppedOldest }, `route "${name}": queue full, dropped the oldest queued message(s)`);
        }
      } catch (err) {
        // A full disk or a broken file: this route loses the message (logged); the broker and the other routes go on.
        this.opts.log.warn({ route: name, topic: packet.topic, err: (err as Error).message }, 'route could not queue a message');
      }
    }
  }

  /** The cloud stored the route's messages up to `seq`. */
  onRoutedAck(route: string, seq: number): void {
    this.routes.get(route)?.cloud?.onAck(seq);
  }

  /** The link changed: cloud routes resend what is unconfirmed on the next link. */
  onLinkChange(up: boolean): void {
    for (const running of this.routes.values()) {
      if (!running.cloud) continue;
      if (up) running.pump.wake();
      else running.cloud.onLinkDown();
    }
  }

  /** An operator's publish from the cloud into the node's broker (the cloud checked the topic's namespace; checked again here). */
  async publishFromCloud(frame: PublishRequestFrame): Promise<void> {
    const problem = operatorPublishProblem(frame.topic);
    if (problem) throw new Error(`topic ${frame.topic}: ${problem}`);
    await this.opts.bus.publish(frame.topic, Buffer.from(frame.payload, 'base64'), frame.qos, frame.retain);
  }

  counters(): RouteCounters[] {
    return [...this.routes.entries()].map(([name, running]) => {
      const durable = this.opts.queue.counters(name);
      const size = this.opts.queue.size(name);
      const destination = running.pump.destination;
      return {
        route: name, destination: destination.kind, ...durable, dropped: { ...durable.dropped },
        queueDepth: size.depth, queueBytes: size.bytes, connected: destination.ready(),
        lastError: running.pump.lastError ?? destination.problem(), lastForwardedAt: running.pump.lastForwardedAt,
      };
    });
  }

  async close(): Promise<void> {
    if (this.subscribed) {
      this.subscribed = false;
      await this.opts.bus.unsubscribe(ALL, this.deliver).catch(() => {});
    }
    for (const running of this.routes.values()) await running.pump.close();
    this.routes.clear();
  }
}

function fingerprintOf(route: NodeRoute): string {
  return JSON.stringify(route.spec);
}

/** A route that cannot reach its destination as configured: its messages queue, its error says why. */
class UnusableDestination implements RouteDestinationPort {
  readonly kind = 'mqtt' as const;
  readonly maxInFlight = 1;
  constructor(private readonly why: string) {}
  ready(): boolean { return false; }
  problem(): string { return this.why; }
  deliver(): Promise<number> { return Promise.reject(new Error(this.why)); }
  async close(): Promise<void> {}
}
