import { describe, expect, it } from 'vitest';
import { WorkloadMqttGrantSchema } from '../../../protocol/index.js';
import type { DevicesBenchReport, PhaseResult, TargetResult } from './devicesReport.js';
import type { WindowFigures } from './latencyRecorder.js';
import { APP_TELEMETRY_FILTER, BENCH_APP_GRANT, appWorkloadNames, benchNodeRoute, hubExtras, routeFigures, type LocalAppsOptions } from './localApps.js';
import { extrasLines, localAppsDocRow, localAppsFigures, localAppsSummary, maxQueueDepth } from './localAppsReport.js';

const options: LocalAppsOptions = { appSubscribers: 10, subscriberProcesses: 2, route: 'mqtt', routeMaxMessagesPerSecond: 100_000, routeMaxQueuedMessages: 10_000, qos: 1 };

describe('local apps and route set-up', () => {
  it('names ten workloads DNS-1123 and in order', () => {
    const names = appWorkloadNames(10);
    expect(names[0]).toBe('bench-app-01');
    expect(names[9]).toBe('bench-app-10');
    expect(appWorkloadNames(120)[119]).toBe('bench-app-120');
  });

  it('asks for a grant the product accepts: telemetry read, nothing written', () => {
    expect(WorkloadMqttGrantSchema.parse(BENCH_APP_GRANT)).toEqual({ publish: [], subscribe: [APP_TELEMETRY_FILTER] });
  });

  it('builds the NodeRoute as the cloud would bind it, with the asked limits', () => {
    const route = benchNodeRoute('mqtt://127.0.0.1:18830', { maxMessagesPerSecond: 5000, maxQueuedMessages: 200 });
    expect(route.spec.source.topics).toEqual(['ef/devices/+/telemetry']);
    expect(route.spec.destination).toMatchObject({ type: 'mqtt', allowPlaintext: true, topicPrefix: 'routed/' });
    expect(route.spec.limits).toMatchObject({ maxMessagesPerSecond: 5000, maxQueuedMessages: 200 });
    expect(() => benchNodeRoute('mqtt://127.0.0.1:1', { maxMessagesPerSecond: 0, maxQueuedMessages: 1 })).toThrow(/maxMessagesPerSecond/);
  });

  it('sets up only what was asked for', () => {
    expect(hubExtras({ ...options, route: 'none' }, null)).toEqual({ apps: { workloads: appWorkloadNames(10), grant: BENCH_APP_GRANT } });
    const routeOnly = hubExtras({ ...options, appSubscribers: 0 }, 'mqtt://127.0.0.1:1');
    expect(Object.keys(routeOnly)).toEqual(['route']);
  });

  it('flattens the route counters, none without a route', () => {
    expect(routeFigures(undefined)).toEqual({});
    expect(routeFigures({
      route: 'bench-telemetry', destination: 'mqtt', matched: 10, queued: 9, forwarded: 7, dropped: { queueFull: 2, oversized: 1 },
      queueDepth: 2, queueBytes: 100, connected: true, lastError: null, lastForwardedAt: null,
    })).toEqual({ routeMatched: 10, routeQueued: 9, routeForwarded: 7, routeQueueDepth: 2, routeDroppedQueueFull: 2, routeDroppedOversized: 1, routeConnected: 1 });
  });
});

function win(perSecond: number, p50: number, p99: number): WindowFigures {
  return { count: perSecond * 10, windowSeconds: 10, perSecond, latencyMs: { count: perSecond * 10, min: 0.1, p50, p90: p99, p99, max: p99 }, perSecondTimeline: [] };
}

function phase(mode: PhaseResult['mode'], perSecond: number, extras?: PhaseResult['extras'], processes: PhaseResult['processes'] = {}): PhaseResult {
  return {
    mode, seconds: 20, offeredPerSecond: mode === 'paced' ? 6000 : null, inflightPerDevice: 1,
    loaders: { sent: 0, acked: 0, telemetrySent: 0, telemetryAcked: 0, failed: 0, skippedAtCap: 0, lagDropped: 0, leftInflight: 0, disconnects: 0, maxDrainMs: 0 },
    publisherAckedPerSecond: perSecond, measured: win(perSecond, 2, 20), machineBusyPercent: 90, processes, loadAverage: [1, 1, 1],
    ...(extras ? { extras } : {}),
  };
}

const route = (depth: number) => ({ routeQueued: 2000, routeForwarded: 2000 - depth, routeQueueDepth: depth, routeDroppedQueueFull: 0, routeDroppedOversized: 0 });

function report(): DevicesBenchReport {
  const hub: TargetResult = {
    target: 'devicehub', connectMs: 1, brokerRssIdleMiB: 130, consumerCounters: { routeQueued: 900, routeDroppedQueueFull: 3, routeDroppedOversized: 1 }, warnings: [],
    phases: [
      phase('saturate', 12_000, { windows: { 'app subscribers': win(24_000, 40, 300), 'route destination': win(2_300, 50, 400) }, atSendingEnd: route(850), afterSettle: route(0) }),
      phase('saturate', 11_000, { windows: {}, atSendingEnd: route(1200), afterSettle: route(0) }),
      phase('paced', 6_000, { windows: { 'app subscribers': win(12_000, 4.25, 38.5), 'route destination': win(1_200, 6, 51) }, atSendingEnd: route(12), afterSettle: route(0) },
        { devicehub: { cpuPercentOfOneCore: 71.4, rssMaxMiB: 180.2 } }),
    ],
  };
  const mosquitto: TargetResult = {
    target: 'mosquitto', connectMs: 1, brokerRssIdleMiB: 8, consumerCounters: {}, warnings: [],
    phases: [
      phase('saturate', 20_000, { windows: { 'plain subscribers': win(40_000, 9, 90) }, atSendingEnd: {}, afterSettle: {} }),
      phase('paced', 6_000, { windows: { 'plain subscribers': win(12_000, 0.9, 6.1) }, atSendingEnd: {}, afterSettle: {} }, { mosquitto: { cpuPercentOfOneCore: 22, rssMaxMiB: 9.6 } }),
    ],
  };
  return {
    bench: 'devices', devices: 1000, seconds: 20, loaders: 2, loaderNice: 0, node: 'v20', cpus: 2, loadAverageStart: [14.2, 13, 12], loadAverageEnd: [15, 14, 12],
    rounds: 2, hubNodeFlags: [], devicehub: hub, mosquitto,
    targets: { throughputRatio: { target: 0.7, actual: 0.6, met: false, rounds: [0.6] }, persistedPerSecond: { target: 20_000, actual: 9000, met: false }, p99Ms: { target: 50, actual: 20, met: true, phase: 'paced' } },
    hubCpuProfile: null, disk: { before: { seconds: 2, commitsPerSecond: 1, commitMs: { count: 1, min: 1, p50: 1, p90: 1, p99: 1, max: 1 } }, after: { seconds: 2, commitsPerSecond: 1, commitMs: { count: 1, min: 1, p50: 1, p90: 1, p99: 1, max: 1 } } },
    hubDbDir: '/tmp/x', localApps: options, totalSeconds: 300,
  };
}

describe('local apps report', () => {
  it('takes latency from the paced phase, on both brokers, and the routed rate from both kinds of phase', () => {
    const x = localAppsFigures(report());
    expect(x.phase).toBe('paced');
    expect(x.offeredPerSecond).toBe(6000);
    expect(x.hubApps?.latencyMs).toMatchObject({ p50: 4.25, p99: 38.5 });
    expect(x.mosquittoPlain?.latencyMs).toMatchObject({ p50: 0.9, p99: 6.1 });
    expect(x.routedSaturated?.perSecond).toBe(2_300);
    expect(x.routedPaced?.perSecond).toBe(1_200);
    expect(x.routeDrops).toBe(4);
    expect(x.hubCpuRss).toEqual({ cpu: 71.4, rss: 180.2 });
    expect(x.mosquittoCpuRss).toEqual({ cpu: 22, rss: 9.6 });
  });

  it('reports the largest queue depth seen when sending stopped, none without a route', () => {
    expect(maxQueueDepth(report().devicehub)).toBe(1200);
    expect(maxQueueDepth(report().mosquitto!)).toBeNull();
  });

  it('falls back to the first saturated phase without a paced one, and says — for what was not measured', () => {
    const r = report();
    r.devicehub.phases = r.devicehub.phases.filter((p) => p.mode === 'saturate');
    r.mosquitto = null;
    r.devicehub.consumerCounters = {};
    const x = localAppsFigures(r);
    expect(x.phase).toBe('saturate');
    expect(x.hubApps?.perSecond).toBe(24_000);
    expect(x.routedPaced).toBeNull();
    expect(x.routeDrops).toBeNull();
    expect(localAppsDocRow(r, 'no mosquitto')).toBe('| no mosquitto | 14.2 13 12 → 15 14 12 | 12,000/s | — | 40.0 / 300.0 ms | — | 2,300/s sat., — paced | 1200 / — | — | — |');
  });

  it('writes the docs row and the summary lines', () => {
    expect(localAppsDocRow(report(), 'session 24')).toBe(
      '| session 24 | 14.2 13 12 → 15 14 12 | 12,000/s | 20,000/s | 4.3 / 38.5 ms (6,000/s) | 0.9 / 6.1 ms | 2,300/s sat., 1,200/s paced | 1200 / 4 | 71 % / 180 MiB | 22 % / 10 MiB |');
    const text = localAppsSummary(report()).join('\n');
    expect(text).toContain('10 subscribers, route mqtt');
    expect(text).toContain('DeviceHub app subscribers 4.3 / 38.5 ms, mosquitto plain subscribers 0.9 / 6.1 ms');
    expect(text).toContain('largest queue depth when sending stopped 1200; drops 4');
  });

  it('adds a phase\'s consumers and route counters to its lines, nothing for a phase without extras', () => {
    const lines = extrasLines(report().devicehub.phases[0]!);
    expect(lines[0]).toContain('app subscribers: 24000/s');
    expect(lines.some((l) => l.includes('route when sending stopped: queued 2000, forwarded 1150, queue depth 850'))).toBe(true);
    expect(extrasLines(phase('saturate', 1))).toEqual([]);
    expect(extrasLines(report().mosquitto!.phases[0]!)).toHaveLength(1);
  });
});

describe('local apps report, edgecore target', () => {
  /** The same report as run by --target edgecore --route cloud: edgecore's and cloudcore's groups, the cloud's stored count. */
  function edgecoreReport(): DevicesBenchReport {
    const r = report();
    r.target = 'edgecore';
    r.localApps = { ...options, route: 'cloud' };
    r.devicehub.target = 'edgecore';
    r.devicehub.consumerCounters = { ...r.devicehub.consumerCounters, routeCloudStored: 897 };
    const paced = r.devicehub.phases.find((p) => p.mode === 'paced')!;
    paced.processes = { edgecore: { cpuPercentOfOneCore: 88.1, rssMaxMiB: 260.4 }, cloudcore: { cpuPercentOfOneCore: 35.2, rssMaxMiB: 190.7 } };
    return r;
  }

  it('reads CPU and RSS from the edgecore group, and cloudcore\'s beside it', () => {
    const x = localAppsFigures(edgecoreReport());
    expect(x.hubCpuRss).toEqual({ cpu: 88.1, rss: 260.4 });
    expect(x.cloudCpuRss).toEqual({ cpu: 35.2, rss: 190.7 });
    expect(x.cloudStored).toBe(897);
    expect(localAppsFigures(report()).cloudCpuRss).toBeNull();
  });

  it('says the route goes to the cloud, and adds cloudcore\'s column to the docs row', () => {
    const text = localAppsSummary(edgecoreReport()).join('\n');
    expect(text).toContain('edgecore app subscribers 4.3 / 38.5 ms');
    expect(text).toContain('routed to the cloud (stored, timed by the cloud\'s receipt): 2,300/s saturated, 1,200/s paced');
    expect(text).toContain('stored in the cloud in all 897');
    expect(text).toContain('edgecore 88 % / 260 MiB, mosquitto 22 % / 10 MiB, cloudcore 35 % / 191 MiB');
    expect(localAppsDocRow(edgecoreReport(), 'cloud')).toMatch(/\| 88 % \/ 260 MiB \| 22 % \/ 10 MiB \| 35 % \/ 191 MiB \|$/);
  });
});
