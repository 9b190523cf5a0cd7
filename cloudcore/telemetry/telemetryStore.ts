import type { TelemetrySample } from '../../protocol/index.js';

/**
 * Recent telemetry per device, kept apart from the revisioned object store (samples are
 * many, small and disposable; they must not bump the global revision). Bounded per device:
 * the oldest samples go first.
 */
export interface TelemetryStore {
  append(device: string, samples: TelemetrySample[]): Promise<void>;
  /** Samples with `t` > since (ISO time), oldest first, at most `limit`. */
  query(device: string, opts: { since?: string; limit: number }): Promise<TelemetrySample[]>;
  /** Forget a device's samples (device deleted). */
  drop(device: string): Promise<void>;
  close(): Promise<void>;
}
