import { describe, expect, it } from 'vitest';
import { conventionProblems, Scrape } from '../../test/metrics/promText.js';
import { buildEdgeStatus, LinkTimes, type StatusParts } from '../local/statusSnapshot.js';
import { EdgeMetrics, secondsBetween, type EdgeObservation } from './edgeMetrics.js';

const T0 = Date.parse('2025-01-01T10:00:00Z');

function observation(over: Partial<StatusParts> = {}, counters = { twinUpdates: 0, telemetryBatches: 0 }): EdgeObservation {
  const status = buildEdgeStatus({
    node: 'edge-1', version: '0.1.0', cloudUrl: 'http://127.0.0.1:1', startedAt: T0, now: T0 + 60_000, pid: 1,
    link: undefined, linkTimes: new LinkTimes(), joinError: null,
    sync: { epoch: 'e', lastRevision: 3 }, outbox: { depth: 0, dropped: 0, oldestSeq: null }, mqtt: null, workloads: [],
    host: { hostname: 'h', os: 'linux', arch: 'x64', uptimeSeconds: 1, loadAverage: [0, 0, 0], memory: { totalBytes: 8, availableBytes: 4, edgecoreRssBytes: 2 }, disk: { path: '/d', totalBytes: 100, availableBytes: 40 } },
    ...over,
  });
  return { status, counters };
}

const running = (restarts: number) => ({ state: 'Running' as const, restarts, generation: 1, observedAt: new Date(T0).toISOString() });

describe('edge metrics', () => {
  it('renders the node as the snapshot says, in Prometheus text a real parser reads', async () => {
    let current = observation();
    const metrics = await EdgeMetrics.create(() => current, { defaultMetrics: false });
    const down = new Scrape(await metrics.render());
    expect(conventionProblems(down, 'edgefleet_')).toEqual([]);
    expect(down.value('edgefleet_edge_link_connected')).toBe(0);
    expect(down.value('edgefleet_edge_link_down_seconds')).toBe(60);
    expect(down.value('edgefleet_edge_build_info', { node: 'edge-1', version: '0.1.0' })).toBe(1);
    expect(down.value('edgefleet_edge_data_disk_available_bytes')).toBe(40);
    expect(down.value('edgefleet_edge_workloads', { state: 'Running' })).toBe(0);

    const times = new LinkTimes();
    times.onPhase('connected', T0 + 30_000);
    current = observation({
      link: { phase: 'connected', downSince: null, lastError: null, stats: { connects: 2, syncFrames: 5, snapshots: 1, changesReceived: 9, upstreamSent: 4, errorsFromCloud: 0, bytesIn: 1000, bytesOut: 500 } },
      linkTimes: times,
      outbox: { depth: 7, dropped: 3, oldestSeq: 1 },
      workloads: [
        { name: 'web', generation: 1, runtime: 'process', status: running(2) },
        { name: 'db', generation: 1, runtime: 'process', status: { ...running(0), state: 'CrashLoop' } },
        { name: 'new', generation: 1, runtime: 'process', status: null },
      ],
      mqtt: {
        url: 'mqtt://127.0.0.1:1883', clients: 2, messages: { received: 10, refused: 1, sent: 6 },
        commits: { transactions: 3, items: 9, rollbacks: 1 }, unreadableRows: 2,
        appGrants: [{ workload: 'alerter', username: 'app-alerter', publish: ['apps/a/#'], subscribe: [], published: 5, delivered: 7, refused: 1 }],
        devices: [{ name: 'pump', online: true, lastSeen: null, reported: {}, desiredVersion: 0, reportedVersion: 1 }],
      },
    }, { twinUpdates: 4, telemetryBatches: 2 });
    const up = new Scrape(await metrics.render());
    expect(up.value('edgefleet_edge_link_connected')).toBe(1);
    expect(up.value('edgefleet_edge_link_down_seconds')).toBe(0);
    expect(up.value('edgefleet_edge_link_up_seconds')).toBe(30);
    expect(up.value('edgefleet_edge_link_connects_total')).toBe(2);
    expect(up.value('edgefleet_edge_outbox_entries')).toBe(7);
    expect(up.value('edgefleet_edge_outbox_dropped_total')).toBe(3);
    expect(up.value('edgefleet_edge_workloads', { state: 'Running' })).toBe(1);
    expect(up.value('edgefleet_edge_workloads', { state: 'CrashLoop' })).toBe(1);
    expect(up.value('edgefleet_edge_workloads', { state: 'Unknown' })).toBe(1);
    expect(up.value('edgefleet_edge_workload_restarts_total', { workload: 'web' })).toBe(2);
    expect(up.value('edgefleet_edge_mqtt_clients')).toBe(2);
    expect(up.value('edgefleet_edge_app_mqtt_messages_total', { workload: 'alerter', kind: 'delivered' })).toBe(7);
    expect(up.value('edgefleet_edge_app_mqtt_messages_total', { workload: 'alerter', kind: 'refused' })).toBe(1);
    expect(up.value('edgefleet_edge_mqtt_messages_sent_total')).toBe(6);
    expect(up.value('edgefleet_edge_device_commits_total')).toBe(3);
    expect(up.value('edgefleet_edge_device_commit_items_total')).toBe(9);
    expect(up.value('edgefleet_edge_device_commit_rollbacks_total')).toBe(1);
    expect(up.value('edgefleet_edge_mqtt_unreadable_rows_total')).toBe(2);
    expect(up.value('edgefleet_edge_devices', { online: 'true' })).toBe(1);
    expect(up.value('edgefleet_edge_twin_updates_total')).toBe(4);
    expect(up.family('edgefleet_edge_twin_updates_total').type).toBe('COUNTER');
  });

  it('two instances in one process keep separate registries', async () => {
    const a = await EdgeMetrics.create(() => observation({ outbox: { depth: 1, dropped: 0, oldestSeq: 1 } }), { defaultMetrics: false });
    const b = await EdgeMetrics.create(() => observation({ outbox: { depth: 2, dropped: 0, oldestSeq: 1 } }), { defaultMetrics: false });
    expect(new Scrape(await a.render()).value('edgefleet_edge_outbox_entries')).toBe(1);
    expect(new Scrape(await b.render()).value('edgefleet_edge_outbox_entries')).toBe(2);
  });

  it('secondsBetween is 0 for no start and never negative', () => {
    expect(secondsBetween(null, '2025-01-01T00:00:00Z')).toBe(0);
    expect(secondsBetween('2025-01-01T00:00:10Z', '2025-01-01T00:00:00Z')).toBe(0);
    expect(secondsBetween('2025-01-01T00:00:00Z', '2025-01-01T00:00:02.5Z')).toBe(2.5);
  });
});
