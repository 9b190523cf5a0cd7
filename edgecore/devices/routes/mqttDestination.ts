import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { MqttDestination } from '../../../protocol/index.js';
import { backoffDelayMs } from '../../link/backoff.js';
import type { RouteDestinationPort } from './routePump.js';
import type { QueuedMessage } from './routeQueue.js';

const RECONNECT_POLICY = { baseMs: 500, maxMs: 30_000 };

/**
 * An operator's MQTT broker as a route destination (MQTT.js, MQTT 3.1.1, QoS 1). TLS verifies
 * the broker's certificate against `ca` (or the system's CAs); plain mqtt:// only when the route
 * says allowPlaintext (warned at start). Clean sessions: what is unconfirmed stays in the edge's
 * queue and is sent again after a reconnect, which this class makes itself, with back-off.
 */
export class MqttRouteDestination implements RouteDestinationPort {
  readonly kind = 'mqtt' as const;
  /** One batch at a time: its PUBACKs say what arrived, and a later batch must not overtake a failed one. */
  readonly maxInFlight = 1;
  private client: MqttClient | undefined;
  private connected = false;
  private closed = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private error: string | null = null;

  constructor(
    private readonly spec: MqttDestination,
    private readonly opts: { clientId: string; password?: string; onReady: () => void; warn: (msg: string) => void },
  ) {
    if (new URL(spec.url).protocol === 'mqtt:') opts.warn(`route destination ${spec.url} is plain MQTT (allowPlaintext): data and password travel unencrypted`);
    this.open();
  }

  private open(): void {
    if (this.closed) return;
    const options: IClientOptions = {
      protocolVersion: 4, clean: true, reconnectPeriod: 0, connectTimeout: 10_000,
      clientId: this.spec.clientId ?? this.opts.clientId,
      rejectUnauthorized: true,
      ...(this.spec.username !== undefined ? { username: this.spec.username } : {}),
      ...(this.opts.password !== undefined ? { password: this.opts.password } : {}),
      ...(this.spec.ca !== undefined ? { ca: this.spec.ca } : {}),
    };
    const client = connect(this.spec.url, options);
    this.client = client;
    client.on('connect', () => {
      this.connected = true;
      this.failures = 0;
      this.error = null;
      this.opts.onReady();
    });
    client.on('error', (err) => { this.error = `${this.spec.url}: ${err.message}`; });
    client.on('close', () => {
      this.connected = false;
      if (this.client !== client || this.closed) return;
      this.error ??= `${this.spec.url}: connection closed`;
      client.removeAllListeners();
      client.on('error', () => {});
      client.end(true);
      this.client = undefined;
      this.failures++;
      this.timer = setTimeout(() => { this.timer = undefined; this.open(); }, backoffDelayMs(this.failures, RECONNECT_POLICY));
      this.timer.unref();
    });
  }

  ready(): boolean {
    return this.connected;
  }

  problem(): string | null {
    return this.connected ? null : (this.error ?? `${this.spec.url}: connecting`);
  }

  async deliver(batch: readonly QueuedMessage[]): Promise<number> {
    const client = this.client;
    if (!client || !this.connected) throw new Error(this.problem() ?? 'not connected');
    // All in flight at once on one connection keeps their order on the wire; the PUBACKs say what arrived.
    const results = await Promise.allSettled(batch.map((m) =>
      client.publishAsync(`${this.spec.topicPrefix}${m.topic}`, m.payload, { qos: 1, retain: false })));
    let confirmed = batch[0]!.seq - 1;
    for (const [i, result] of results.entries()) {
      if (result.status === 'rejected') {
        if (i === 0) throw new Error(`${this.spec.url}: ${(result.reason as Error).message}`);
        break;
      }
      confirmed = batch[i]!.seq;
    }
    return confirmed;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync(true);
  }
}
