import { describe, expect, it } from 'vitest';
import { parseReportedPayload } from '../../../edgecore/devices/twin/twinEngine.js';
import { BENCH_MODEL, benchDevices, deviceNames, reportedPayload, reportedTopic, sentTimeOf, splitEvenly } from './benchDevices.js';
import { TARGETS, median, stealWarning, targetChecks, type PhaseResult, type TargetResult } from './devicesReport.js';
import { LatencyRecorder, microsSince } from './latencyRecorder.js';
import { busyPercent, parseProcStatCpu, stealPercent } from './machineLoad.js';
import { mosquittoConfig } from './mosquittoProcess.js';

describe('bench devices and payloads', () => {
  it('names devices DNS-1123 and in order', () => {
    expect(deviceNames(3)).toEqual(['bench-dev-0001', 'bench-dev-0002', 'bench-dev-0003']);
    expect(deviceNames(12_000)[11_999]).toBe('bench-dev-12000');
  });

  it('builds valid Device objects sharing one credential hash', () => {
    const hash = `scrypt$${Buffer.alloc(16, 1).toString('base64')}$${Buffer.alloc(32, 2).toString('base64')}`;
    const [a, b] = benchDevices(deviceNames(2), hash);
    expect(a!.spec.credentialHash).toBe(hash);
    expect(b!.spec.credentialHash).toBe(hash);
    expect(a!.spec.modelSpec).toEqual(BENCH_MODEL);
  });

  it('writes reports the hub accepts, carrying the send time in counter', () => {
    for (const seq of [0, 1, 7, 199, 200, 123_457]) {
      const payload = reportedPayload(seq, 98_765_432);
      const parsed = parseReportedPayload(Buffer.from(payload), BENCH_MODEL);
      expect(parsed.ok).toBe(true);
      expect(sentTimeOf(payload)).toBe(98_765_432);
    }
    expect(reportedPayload(1, 5)).not.toBe(reportedPayload(2, 5));
    expect(reportedTopic('bench-dev-0001')).toBe('ef/devices/bench-dev-0001/twin/reported');
    expect(sentTimeOf('not json')).toBeUndefined();
    expect(sentTimeOf('{"properties":{"counter":1.5}}')).toBeUndefined();
  });

  it('splits devices evenly over loaders', () => {
    expect(splitEvenly([1, 2, 3, 4, 5], 2)).toEqual([[1, 2, 3], [4, 5]]);
    expect(splitEvenly([1, 2], 4)).toEqual([[1], [2]]);
  });
});

describe('LatencyRecorder', () => {
  it('summarizes only the messages received within the window, across chunk boundaries', () => {
    const r = new LatencyRecorder();
    // 100 000 messages, one every 10 µs, each received 2 ms after it was sent.
    for (let i = 0; i < 100_000; i++) r.add(i * 10, i * 10 + 2000);
    const w = r.window(2000, 1_002_000);
    expect(w.count).toBe(100_000);
    expect(w.windowSeconds).toBe(1);
    expect(w.perSecond).toBe(100_000);
    expect(w.latencyMs.p50).toBe(2);
    expect(w.latencyMs.p99).toBe(2);
    expect(w.perSecondTimeline).toEqual([{ count: 100_000, maxLatencyMs: 2 }]);
    expect(r.window(500_000, 600_000).count).toBe(10_000);
  });

  it('counts what it can no longer keep', () => {
    const r = new LatencyRecorder(2);
    r.add(0, 1000);
    r.add(0, 2000);
    r.add(0, 3000);
    expect(r.total).toBe(3);
    expect(r.overflow).toBe(1);
    expect(r.window(0, 10_000).count).toBe(2);
  });

  it('keeps a per-second timeline that shows a stall', () => {
    const r = new LatencyRecorder();
    r.add(0, 100_000);
    r.add(1_000_000, 2_700_000);
    const w = r.window(0, 3_000_000);
    expect(w.perSecondTimeline).toEqual([{ count: 1, maxLatencyMs: 100 }, { count: 0, maxLatencyMs: 0 }, { count: 1, maxLatencyMs: 1700 }]);
  });

  it('puts every process on the same time axis', () => {
    const t0 = Date.now();
    const us = microsSince(t0);
    expect(us).toBeGreaterThanOrEqual(-5000);
    expect(us).toBeLessThan(5_000_000);
  });
});

function phase(mode: PhaseResult['mode'], perSecond: number, p99: number, acked = 0, telemetryAcked = 0): PhaseResult {
  return {
    mode, seconds: 20, offeredPerSecond: mode === 'paced' ? perSecond : null, inflightPerDevice: 1,
    loaders: { sent: acked, acked, telemetrySent: telemetryAcked, telemetryAcked, failed: 0, skippedAtCap: 0, lagDropped: 0, leftInflight: 0, disconnects: 0, maxDrainMs: 0 },
    publisherAckedPerSecond: perSecond,
    measured: { count: 100, windowSeconds: 18, perSecond, latencyMs: { count: 100, min: 1, p50: 2, p90: 3, p99, max: p99 }, perSecondTimeline: [] },
    machineBusyPercent: 50, processes: {}, loadAverage: [1, 1, 1],
  };
}

function target(name: TargetResult['target'], phases: PhaseResult[]): TargetResult {
  return { target: name, connectMs: 1, brokerRssIdleMiB: 1, phases, consumerCounters: {}, warnings: [] };
}

describe('targetChecks', () => {
  it('judges throughput on the saturated phases and latency on the paced one', () => {
    const hub = target('devicehub', [phase('saturate', 21_000, 400), phase('paced', 10_000, 30)]);
    const mosq = target('mosquitto', [phase('saturate', 28_000, 10)]);
    const t = targetChecks(hub, mosq);
    expect(t.throughputRatio).toEqual({ target: TARGETS.throughputRatio, actual: 0.75, met: true, rounds: [0.75] });
    expect(t.persistedPerSecond).toEqual({ target: 20_000, actual: 21_000, met: true });
    expect(t.p99Ms).toEqual({ target: 50, actual: 30, met: true, phase: 'paced' });
  });

  it('counts only twin reports towards the persisted-updates target when telemetry is mixed in', () => {
    // 1 in 5 publishes was telemetry: 21,000 messages/s hold 16,800 reports/s.
    const hub = target('devicehub', [phase('saturate', 21_000, 400, 100_000, 20_000)]);
    const t = targetChecks(hub, target('mosquitto', [phase('saturate', 28_000, 10)]));
    expect(t.persistedPerSecond).toEqual({ target: 20_000, actual: 16_800, met: false });
    expect(t.throughputRatio.actual).toBe(0.75);
  });

  it('pairs each hub round with the mosquitto round after it and takes the medians', () => {
    // A slow host minute in round 2 slows both; the ratio of that round is still in line.
    const hub = target('devicehub', [phase('saturate', 12_000, 150), phase('saturate', 9_000, 200), phase('saturate', 12_600, 140), phase('paced', 6_000, 20)]);
    const mosq = target('mosquitto', [phase('saturate', 19_000, 40), phase('saturate', 14_000, 60), phase('saturate', 24_000, 50), phase('paced', 6_000, 3)]);
    const t = targetChecks(hub, mosq);
    expect(t.throughputRatio.rounds).toEqual([0.632, 0.643, 0.525]);
    expect(t.throughputRatio).toMatchObject({ actual: 0.632, met: false });
    expect(t.persistedPerSecond.actual).toBe(12_000);
    expect(t.p99Ms).toMatchObject({ actual: 20, phase: 'paced' });
    expect(median([])).toBeNaN();
    expect(median([3, 1, 2, 10])).toBe(2.5);
  });

  it('reports n/a without mosquitto and falls back to the saturated latency', () => {
    const t = targetChecks(target('devicehub', [phase('saturate', 1000, 80)]), null);
    expect(t.throughputRatio).toEqual({ target: 0.7, actual: null, met: null, rounds: [null] });
    expect(t.persistedPerSecond.met).toBe(false);
    expect(t.p99Ms).toEqual({ target: 50, actual: 80, met: false, phase: 'saturate' });
  });
});

describe('machine load and mosquitto config', () => {
  it('reads the aggregate cpu line of /proc/stat', () => {
    const text = 'cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n';
    expect(parseProcStatCpu(text)).toEqual({ busy: 150, total: 1000, steal: 0 });
    expect(busyPercent({ busy: 150, total: 1000, steal: 0 }, { busy: 250, total: 1200, steal: 0 })).toBe(50);
    // user nice system idle iowait irq softirq steal: steal is busy time the host gave to others.
    expect(parseProcStatCpu('cpu  100 0 50 700 50 0 0 100 0 0\n')).toEqual({ busy: 250, total: 1000, steal: 100 });
    expect(stealPercent({ busy: 250, total: 1000, steal: 100 }, { busy: 400, total: 1200, steal: 160 })).toBe(30);
    expect(stealPercent({ busy: 1, total: 5, steal: 0 }, { busy: 1, total: 5, steal: 0 })).toBe(0);
    expect(() => parseProcStatCpu('intr 1 2 3\n')).toThrow(/cpu line/);
  });

  it('flags a run where the host took ≥ 10 % of the cores in some phase, naming the worst and how many phases', () => {
    const withSteal = (steal: number | undefined): PhaseResult => ({ ...phase('saturate', 1000, 10), ...(steal === undefined ? {} : { machineStealPercent: steal }) });
    expect(stealWarning({ devicehub: target('devicehub', [withSteal(3), withSteal(undefined)]), mosquitto: null })).toBeNull();
    const warning = stealWarning({ devicehub: target('devicehub', [withSteal(9.9), withSteal(41)]), mosquitto: target('mosquitto', [withSteal(12)]) });
    expect(warning).toContain('up to 41 %');
    expect(warning).toContain('in 2 of 3 phases');
  });

  it('writes a loopback-only, anonymous, non-persistent mosquitto config', () => {
    const conf = mosquittoConfig(18830, '/tmp/x/mosquitto.log');
    expect(conf).toContain('listener 18830 127.0.0.1\n');
    expect(conf).toContain('allow_anonymous true\n');
    expect(conf).toContain('persistence false\n');
  });
});
