import { performance } from 'node:perf_hooks';
import { summarizeLatencies, type LatencySummary } from '../figures.js';

/**
 * Send and receive times of the benchmark's reported updates, on one time axis shared by every
 * process of a run: microseconds since `t0Ms` (a Date.now() value the parent picks). Against
 * mosquitto the sender puts its time into the payload's `counter` (an int property of the
 * model) and the subscriber records it next to its own; against the hub, whose PUBACK follows
 * the commit, each loader records send and PUBACK time itself.
 */

/** Microseconds since t0Ms on this process's high-resolution wall clock. */
export function microsSince(t0Ms: number): number {
  return Math.round((performance.timeOrigin + performance.now() - t0Ms) * 1000);
}

export interface WindowFigures {
  /** Messages received within [fromUs, toUs). */
  count: number;
  windowSeconds: number;
  perSecond: number;
  /** Receive time − send time of those messages, in ms. */
  latencyMs: LatencySummary;
  /** Per second of the window: messages received and their largest latency (ms), to show stalls. */
  perSecondTimeline: { count: number; maxLatencyMs: number }[];
}

/** Grows in chunks so a long run does not copy one huge array; stops recording at `capacity`. */
export class LatencyRecorder {
  private readonly chunkSize = 65_536;
  private readonly sent: Float64Array[] = [];
  private readonly received: Float64Array[] = [];
  private size = 0;
  /** Records beyond capacity are counted here and not kept. */
  overflow = 0;

  constructor(private readonly capacity = 20_000_000) {}

  get total(): number {
    return this.size + this.overflow;
  }

  add(sentUs: number, receivedUs: number): void {
    if (this.size >= this.capacity) {
      this.overflow++;
      return;
    }
    const chunk = Math.floor(this.size / this.chunkSize);
    if (chunk === this.sent.length) {
      this.sent.push(new Float64Array(this.chunkSize));
      this.received.push(new Float64Array(this.chunkSize));
    }
    const at = this.size % this.chunkSize;
    this.sent[chunk]![at] = sentUs;
    this.received[chunk]![at] = receivedUs;
    this.size++;
  }

  /** The records received within [fromUs, toUs), in recording order (window() and merging recorders with addAll). */
  between(fromUs: number, toUs: number): { sentUs: number[]; receivedUs: number[] } {
    const sentUs: number[] = [];
    const receivedUs: number[] = [];
    for (let i = 0; i < this.size; i++) {
      const chunk = Math.floor(i / this.chunkSize);
      const at = i % this.chunkSize;
      const received = this.received[chunk]![at]!;
      if (received < fromUs || received >= toUs) continue;
      sentUs.push(this.sent[chunk]![at]!);
      receivedUs.push(received);
    }
    return { sentUs, receivedUs };
  }

  addAll(records: { sentUs: readonly number[]; receivedUs: readonly number[] }): void {
    records.sentUs.forEach((sent, i) => this.add(sent, records.receivedUs[i]!));
  }

  /** Throughput and latency of the messages received within [fromUs, toUs). */
  window(fromUs: number, toUs: number): WindowFigures {
    const { sentUs, receivedUs } = this.between(fromUs, toUs);
    const windowSeconds = Math.max((toUs - fromUs) / 1e6, 1e-6);
    // Whole seconds; a partial last second of under half a second joins the one before.
    const timeline = Array.from({ length: Math.max(1, Math.round(windowSeconds)) }, () => ({ count: 0, maxLatencyMs: 0 }));
    const latencies = receivedUs.map((received, i) => {
      const latencyMs = (received - sentUs[i]!) / 1000;
      const second = timeline[Math.min(timeline.length - 1, Math.floor((received - fromUs) / 1e6))]!;
      second.count++;
      second.maxLatencyMs = Math.max(second.maxLatencyMs, Math.round(latencyMs * 10) / 10);
      return latencyMs;
    });
    return {
      count: latencies.length, windowSeconds, perSecond: latencies.length / windowSeconds,
      latencyMs: summarizeLatencies(latencies), perSecondTimeline: timeline,
    };
  }
}
