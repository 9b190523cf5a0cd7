import type { TelemetrySample } from '../../../protocol/index.js';
import { MAX_SAMPLES_PER_MESSAGE, type TelemetryEntry } from '../twin/twinEngine.js';

export interface TelemetryBatchOptions {
  /** Most samples in one upstream entry (1–1000). */
  maxSamples: number;
  /** How long the first sample of a batch may wait for more. */
  maxDelayMs: number;
}

/**
 * Collects telemetry per device and hands it on in batches: one outbox entry per batch
 * instead of one per MQTT message. A batch goes out when it is full or when its first sample
 * has waited maxDelayMs, whichever comes first. A batch that fills up is emitted within add();
 * one whose time is up is handed to `runTimed` (the hub runs it in its next group commit).
 */
export class TelemetryBatcher {
  /** Per device: its samples, the timer that sends them, and the journal seq of the first (TelemetryJournal). */
  private readonly pending = new Map<string, { samples: TelemetrySample[]; timer: NodeJS.Timeout; firstSeq: number }>();
  /** Most samples in one batch (one upstream entry). */
  readonly maxSamples: number;
  private readonly maxDelayMs: number;

  constructor(
    options: TelemetryBatchOptions,
    private readonly emit: (entry: TelemetryEntry) => void,
    private readonly runTimed: (flush: () => void) => void = (flush) => flush(),
  ) {
    if (!Number.isInteger(options.maxSamples) || options.maxSamples < 1 || options.maxSamples > MAX_SAMPLES_PER_MESSAGE) {
      throw new RangeError(`telemetryBatch.maxSamples must be an integer from 1 to ${MAX_SAMPLES_PER_MESSAGE}, got ${options.maxSamples}`);
    }
    if (!(options.maxDelayMs >= 0) || !Number.isFinite(options.maxDelayMs)) {
      throw new RangeError(`telemetryBatch.maxDelayMs must be a non-negative number, got ${options.maxDelayMs}`);
    }
    this.maxSamples = options.maxSamples;
    this.maxDelayMs = options.maxDelayMs;
  }

  /** `journalSeq`: the journal row the samples are in (0 when they are in none). */
  add(device: string, samples: readonly TelemetrySample[], journalSeq = 0): void {
    for (const sample of samples) {
      let batch = this.pending.get(device);
      if (batch === undefined) {
        const timer = setTimeout(() => this.runTimed(() => this.flush(device)), this.maxDelayMs);
        // A pending batch must not keep the process alive on its own; close() flushes it.
        timer.unref();
        batch = { samples: [], timer, firstSeq: journalSeq };
        this.pending.set(device, batch);
      }
      batch.samples.push(sample);
      if (batch.samples.length >= this.maxSamples) this.flush(device);
    }
  }

  /** Sends the device's pending samples now (no-op when there are none). */
  flush(device: string): void {
    const batch = this.pending.get(device);
    if (batch === undefined) return;
    clearTimeout(batch.timer);
    this.pending.delete(device);
    this.emit({ kind: 'telemetry', key: device, body: { device, samples: batch.samples } });
  }

  /** Drops the device's pending samples (the device was removed from the node). */
  discard(device: string): void {
    const batch = this.pending.get(device);
    if (batch === undefined) return;
    clearTimeout(batch.timer);
    this.pending.delete(device);
  }

  flushAll(): void {
    for (const device of [...this.pending.keys()]) this.flush(device);
  }

  /** The lowest journal seq a waiting sample is in: journal rows below it hold nothing unsent. */
  oldestJournalSeq(): number | undefined {
    let oldest: number | undefined;
    for (const batch of this.pending.values()) {
      if (batch.firstSeq > 0 && (oldest === undefined || batch.firstSeq < oldest)) oldest = batch.firstSeq;
    }
    return oldest;
  }

  pendingSamples(): number {
    let total = 0;
    for (const batch of this.pending.values()) total += batch.samples.length;
    return total;
  }
}
