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
 * EdgeFleet's cloud as a route destination: a batch goes as one `routed` frame, and is
 * confirmed by the cloud's cumulative `routedAck` once the cloud stored it. A lost ack or link
 * means the batch is sent again; the cloud keeps each (node, route, stream, seq) once.
 */
export class CloudRouteDestination implements RouteDestinationPort {
  readonly kind = 'cloud' as const;
  private waiting: { last: number; resolve: (seq: number) => void; reject: (err: Error) => void; timer: NodeJS.Timeout } | undefined;

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
      const timer = setTimeout(() => this.fail(new Error(`no ack from the cloud within ${ACK_TIMEOUT_MS / 1000} s`)), ACK_TIMEOUT_MS);
      timer.unref();
      this.waiting = { last: batch[batch.length - 1]!.seq, resolve, reject, timer };
      if (!this.uplink.send(frame)) this.fail(new Error('the cloud link is down (or the cloud is a cloudcore older than routes): messages wait in the queue'));
    });
  }

  /** The cloud's `routedAck` for this route. */
  onAck(seq: number): void {
    const waiting = this.waiting;
    if (!waiting || seq <= 0) return;
    clearTimeout(waiting.timer);
    this.waiting = undefined;
    waiting.resolve(Math.min(seq, waiting.last));
  }

  /** The link went down: a batch in flight is sent again on the next link. */
  onLinkDown(): void {
    this.fail(new Error('the cloud link went down: messages wait in the queue'));
  }

  private fail(err: Error): void {
    const waiting = this.waiting;
    if (!waiting) return;
    clearTimeout(waiting.timer);
    this.waiting = undefined;
    waiting.reject(err);
  }

  async close(): Promise<void> {
    this.fail(new Error('route closed'));
  }
}
