import type { EdgeFrame } from '../../../protocol/index.js';
import type { RouteDestinationPort } from './routePump.js';
import type { QueuedMessage } from './routeQueue.js';

/** The cloud link as the routes see it (the link's `sendRouted` and state). */
export interface RouteUplink {
  /** False when the link is not up: nothing was sent. */
  send(frame: Extract<EdgeFrame, { type: 'routed' | 'routeStatus' | 'publishResult' }>): boolean;
  up(): boolean;
}

/** How long a routed frame may wait for its ack before it is sent again (the link may have dropped it). */
const ACK_TIMEOUT_MS = 30_000;

/**
 * Batches the cloud link carries before the first is acked. The cloud stores a node's routed
 * frames in arrival order and acks each once stored, so an ack confirms every batch before it;
 * with one batch at a time a round trip per 100 messages capped a route at 180–600 messages/s
 * on the benchmark host.
 */
const BATCHES_IN_FLIGHT = 4;

interface WaitingBatch { last: number; resolve: (seq: number) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }

/**
 * EdgeFleet's cloud as a route destination: a batch goes as one `routed` frame, and is
 * confirmed by the cloud's cumulative `routedAck` once the cloud stored it. A lost ack or link
 * fails every batch still waiting, and the pump sends them again from the oldest; the cloud
 * keeps each (node, route, stream, seq) once.
 */
export class CloudRouteDestination implements RouteDestinationPort {
  readonly kind = 'cloud' as const;
  readonly maxInFlight = BATCHES_IN_FLIGHT;
  /** Batches sent and not yet acked, oldest first. */
  private readonly waiting: WaitingBatch[] = [];

  constructor(private readonly route: string, private readonly stream: () => string, private readonly uplink: RouteUplink) {}

  ready(): boolean {
    return this.uplink.up();
  }

  problem(): string | null {
    return this.uplink.up() ? null : 'the cloud link is down (or the cloud is a cloudcore older than routes): messages wait in the queue';
  }

  deliver(batch: readonly QueuedMessage[]): Promise<number> {
    const frame = {
      type: 'routed' as const, route: this.route, stream: this.stream(),
      messages: batch.map((m) => ({ seq: m.seq, topic: m.topic, payload: m.payload.toString('base64'), t: m.t })),
    };
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.failAll(new Error(`no ack from the cloud within ${ACK_TIMEOUT_MS / 1000} s`)), ACK_TIMEOUT_MS);
      timer.unref();
      this.waiting.push({ last: batch[batch.length - 1]!.seq, resolve, reject, timer });
      if (!this.uplink.send(frame)) this.failAll(new Error('the cloud link is down (or the cloud is a cloudcore older than routes): messages wait in the queue'));
    });
  }

  /** The cloud's `routedAck` for this route: every batch through `seq` is stored. */
  onAck(seq: number): void {
    while (this.waiting.length > 0 && this.waiting[0]!.last <= seq) {
      const done = this.waiting.shift()!;
      clearTimeout(done.timer);
      done.resolve(done.last);
    }
  }

  /** The link went down: batches in flight are sent again on the next link. */
  onLinkDown(): void {
    this.failAll(new Error('the cloud link went down: messages wait in the queue'));
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  async close(): Promise<void> {
    this.failAll(new Error('route closed'));
  }
}
