import { describe, expect, it } from 'vitest';
import { TelemetryBatcher } from './telemetryBatcher.js';
import type { TelemetryEntry } from '../twin/twinEngine.js';
import { waitFor } from '../../../test/helpers/devices/deviceHubFixtures.js';

const sample = (n: number) => ({ t: `2024-05-01T10:00:0${n}Z`, values: { n } });

describe('TelemetryBatcher', () => {
  it('emits full batches at once and splits a large add', () => {
    const out: TelemetryEntry[] = [];
    const batcher = new TelemetryBatcher({ maxSamples: 2, maxDelayMs: 60_000 }, (e) => out.push(e));
    batcher.add('a', [sample(1), sample(2), sample(3), sample(4), sample(5)]);
    expect(out.map((e) => e.body.samples.length)).toEqual([2, 2]);
    expect(out[0]).toEqual({ kind: 'telemetry', key: 'a', body: { device: 'a', samples: [sample(1), sample(2)] } });
    expect(batcher.pendingSamples()).toBe(1);
    batcher.flushAll();
    expect(out.map((e) => e.body.samples.length)).toEqual([2, 2, 1]);
  });

  it('emits a partial batch after maxDelayMs, per device', async () => {
    const out: TelemetryEntry[] = [];
    const batcher = new TelemetryBatcher({ maxSamples: 100, maxDelayMs: 50 }, (e) => out.push(e));
    batcher.add('a', [sample(1)]);
    batcher.add('b', [sample(2)]);
    batcher.add('a', [sample(3)]);
    await waitFor(() => out.length === 2, 'two timed batches');
    expect(out.find((e) => e.key === 'a')!.body.samples).toEqual([sample(1), sample(3)]);
    expect(batcher.pendingSamples()).toBe(0);
  });

  it('discards a removed device and validates options', () => {
    const out: TelemetryEntry[] = [];
    const batcher = new TelemetryBatcher({ maxSamples: 10, maxDelayMs: 10 }, (e) => out.push(e));
    batcher.add('a', [sample(1)]);
    batcher.discard('a');
    batcher.flushAll();
    expect(out).toEqual([]);
    expect(() => new TelemetryBatcher({ maxSamples: 0, maxDelayMs: 1 }, () => {})).toThrow(RangeError);
    expect(() => new TelemetryBatcher({ maxSamples: 1001, maxDelayMs: 1 }, () => {})).toThrow(RangeError);
  });
});
