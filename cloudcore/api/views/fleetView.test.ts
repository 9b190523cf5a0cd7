import { describe, expect, it } from 'vitest';
import type { Device, Node, NodePhase, Workload, WorkloadState } from '../../../protocol/index.js';
import { LinkQuality } from '../../hub/linkQuality.js';
import { NodeStatsHistory } from '../../telemetry/nodeStatsHistory.js';
import { concernsChange, FleetIndex, queryFleet, type FleetLinks, type FleetQuery } from './fleetView.js';

const node = (name: string, phase: NodePhase, labels: Record<string, string> = {}, version = '0.1.0'): Node => ({
  kind: 'Node', metadata: { name, labels }, spec: {},
  status: {
    phase, since: '2025-01-01T00:00:00.000Z', lastSeen: phase === 'Pending' ? null : '2025-01-01T00:05:00.000Z',
    epoch: null, ackedRevision: 0, agent: phase === 'Pending' ? null : { version, os: 'linux', arch: 'x64', hostname: name },
  },
});

const workload = (app: string, nodeName: string, state?: WorkloadState): Workload => ({
  kind: 'Workload', metadata: { name: `${app}.${nodeName}` },
  spec: { nodeName, app, generation: 1, template: { runtime: 'process', command: '/bin/true' } as Workload['spec']['template'] },
  ...(state ? { status: { state, restarts: 0, generation: 1, observedAt: '2025-01-01T00:00:00Z' } } : {}),
});

const device = (name: string, nodeName: string, online: boolean): Device => ({
  kind: 'Device', metadata: { name },
  spec: { model: 'm', nodeName, protocol: { name: 'virtual', config: {} }, properties: [], desired: {}, desiredVersion: 0, desiredMetadata: {} },
  status: { twin: { reported: {}, version: 0, metadata: {} }, online, lastSeen: null },
});

const query = (q: Partial<FleetQuery> = {}): FleetQuery => ({ sort: 'name', order: 'asc', limit: 50, offset: 0, ...q });

function sampleIndex(): FleetIndex {
  const index = new FleetIndex();
  index.apply('ADDED', node('edge-a', 'Ready', { zone: 'north' }), 1);
  index.apply('ADDED', node('edge-b', 'Offline', { zone: 'south' }, '0.0.9'), 2);
  index.apply('ADDED', node('edge-c', 'Pending'), 3);
  index.apply('ADDED', workload('web', 'edge-a', 'Running'), 4);
  index.apply('ADDED', workload('db', 'edge-a', 'CrashLoop'), 5);
  index.apply('ADDED', workload('web', 'edge-b'), 6);
  index.apply('ADDED', device('d1', 'edge-a', true), 7);
  index.apply('ADDED', device('d2', 'edge-a', false), 8);
  return index;
}

describe('FleetIndex', () => {
  it('counts workloads by state and devices per node, and keeps counts right through changes and deletes', () => {
    const index = sampleIndex();
    expect(index.workloadsOn('edge-a')).toEqual({ total: 2, byState: { Running: 1, CrashLoop: 1 } });
    expect(index.workloadsOn('edge-b')).toEqual({ total: 1, byState: { Pending: 1 } });
    expect(index.devicesOn('edge-a')).toEqual({ total: 2, online: 1 });
    index.apply('MODIFIED', workload('db', 'edge-a', 'Running'), 9);
    index.apply('MODIFIED', device('d2', 'edge-a', true), 10);
    index.apply('DELETED', workload('web', 'edge-b', 'Running'), 11);
    expect(index.workloadsOn('edge-a')).toEqual({ total: 2, byState: { Running: 2 } });
    expect(index.workloadsOn('edge-b')).toEqual({ total: 0, byState: {} });
    expect(index.devicesOn('edge-a')).toEqual({ total: 2, online: 2 });
    expect(index.workloadTotals).toEqual({ total: 2, byState: { Running: 2 } });
    expect(index.revision).toBe(11);
    // A replayed older event (watch after list) does not move the revision back.
    index.apply('MODIFIED', node('edge-a', 'Ready'), 3);
    expect(index.revision).toBe(11);
    index.apply('DELETED', node('edge-c', 'Pending'), 12);
    expect([...index.nodes.keys()]).toEqual(['edge-a', 'edge-b']);
  });
});

describe('queryFleet', () => {
  it('answers rows with counts, totals by phase and the revision', () => {
    const page = queryFleet(sampleIndex(), query(), undefined, 0);
    expect(page.items.map((r) => r.name)).toEqual(['edge-a', 'edge-b', 'edge-c']);
    expect(page.items[0]).toMatchObject({
      phase: 'Ready', labels: { zone: 'north' }, agent: { version: '0.1.0', os: 'linux', arch: 'x64' },
      workloads: { total: 2, byState: { Running: 1, CrashLoop: 1 } }, devices: { total: 2, online: 1 }, link: null,
    });
    expect(page.totals).toEqual({
      nodes: 3, byPhase: { Ready: 1, Offline: 1, Pending: 1 },
      workloads: { total: 3, byState: { Running: 1, CrashLoop: 1, Pending: 1 } }, devices: { total: 2, online: 1 },
    });
    expect(page.matched).toBe(3);
    expect(page.resourceVersion).toBe(8);
  });

  it('filters by status, label selector and name; totals stay fleet-wide', () => {
    const index = sampleIndex();
    expect(queryFleet(index, query({ status: 'Offline' }), undefined, 0).items.map((r) => r.name)).toEqual(['edge-b']);
    const north = queryFleet(index, query({ labelSelector: { matchLabels: { zone: 'north' } } }), undefined, 0);
    expect(north.items.map((r) => r.name)).toEqual(['edge-a']);
    expect(north.matched).toBe(1);
    expect(north.totals.nodes).toBe(3);
    expect(queryFleet(index, query({ search: 'DGE-C' }), undefined, 0).items.map((r) => r.name)).toEqual(['edge-c']);
  });

  it('sorts by any column both ways, missing values last, ties by name', () => {
    const index = sampleIndex();
    const names = (q: Partial<FleetQuery>) => queryFleet(index, query(q), undefined, 0).items.map((r) => r.name);
    expect(names({ order: 'desc' })).toEqual(['edge-c', 'edge-b', 'edge-a']);
    expect(names({ sort: 'workloads', order: 'desc' })).toEqual(['edge-a', 'edge-b', 'edge-c']);
    expect(names({ sort: 'version' })).toEqual(['edge-b', 'edge-a', 'edge-c']);
    expect(names({ sort: 'version', order: 'desc' })).toEqual(['edge-a', 'edge-b', 'edge-c']);
    expect(names({ sort: 'status' })).toEqual(['edge-b', 'edge-c', 'edge-a']);
    expect(names({ sort: 'notRunning', order: 'desc' })).toEqual(['edge-a', 'edge-b', 'edge-c']);
  });

  it('pages without overlap or gaps', () => {
    const index = new FleetIndex();
    for (let i = 0; i < 25; i++) index.apply('ADDED', node(`n-${String(i).padStart(2, '0')}`, 'Ready', {}, i % 2 ? '1' : '2'));
    const seen: string[] = [];
    for (let offset = 0; offset < 25; offset += 10) {
      const page = queryFleet(index, query({ sort: 'version', offset, limit: 10 }), undefined, 0);
      expect(page.matched).toBe(25);
      seen.push(...page.items.map((r) => r.name));
    }
    expect(new Set(seen).size).toBe(25);
  });

  it('adds the hub\'s live view: connection, last frame, reconnects and round trip', () => {
    const index = sampleIndex();
    const quality = new LinkQuality();
    quality.recordOpen('edge-a', 1_000);
    quality.recordOpen('edge-a', 2_000);
    quality.recordRtt('edge-a', 12);
    quality.recordOpen('edge-b', 1_000);
    const lastFrame = Date.parse('2025-01-01T00:09:00.000Z');
    const links: FleetLinks = { quality, stats: new NodeStatsHistory(), liveLastSeen: (n) => (n === 'edge-a' ? lastFrame : undefined) };
    const page = queryFleet(index, query({ sort: 'rtt' }), links, 3_000);
    expect(page.items[0]).toMatchObject({ name: 'edge-a', lastSeen: '2025-01-01T00:09:00.000Z', link: { connected: true, reconnectsLastHour: 1, rttMs: 12 } });
    expect(page.items[1]).toMatchObject({ name: 'edge-b', lastSeen: '2025-01-01T00:05:00.000Z', link: { connected: false, rttMs: null } });
    expect(page.items[2]).toMatchObject({ name: 'edge-c', link: null });
  });
});

describe('concernsChange', () => {
  const event = { kind: 'Event', metadata: { name: 'edge-a.x.1' }, spec: { node: 'edge-a', reason: 'Started' } };
  const rollout = { kind: 'Rollout', metadata: { name: 'web' }, spec: { app: 'web' } };
  const revision = { kind: 'AppRevision', metadata: { name: 'web.r2' }, spec: { app: 'web' } };
  const app = { kind: 'App', metadata: { name: 'web' }, spec: {} };
  const token = { kind: 'JoinToken', metadata: { name: 't' }, spec: { node: 'edge-a' } };

  it('a node page hears of its node and what is bound to it, nothing else', () => {
    const f = { node: 'edge-a' };
    expect(concernsChange(f, node('edge-a', 'Ready'))).toBe(true);
    expect(concernsChange(f, node('edge-b', 'Ready'))).toBe(false);
    expect(concernsChange(f, workload('web', 'edge-a'))).toBe(true);
    expect(concernsChange(f, workload('web', 'edge-b'))).toBe(false);
    expect(concernsChange(f, device('d1', 'edge-a', true))).toBe(true);
    expect(concernsChange(f, event)).toBe(true);
    expect(concernsChange(f, token)).toBe(false);
  });

  it('an app page hears of the app, its rollout, revisions and workloads', () => {
    const f = { app: 'web' };
    for (const o of [app, rollout, revision, workload('web', 'edge-b')]) expect(concernsChange(f, o)).toBe(true);
    expect(concernsChange(f, workload('db', 'edge-a'))).toBe(false);
    expect(concernsChange(f, node('web', 'Ready'))).toBe(false);
  });

  it('a device page hears of its device; the fleet of fleet kinds but not events or tokens', () => {
    expect(concernsChange({ device: 'd1' }, device('d1', 'edge-a', true))).toBe(true);
    expect(concernsChange({ device: 'd1' }, device('d2', 'edge-a', true))).toBe(false);
    for (const o of [node('n', 'Ready'), workload('w', 'n'), device('d', 'n', false), app, rollout, revision]) expect(concernsChange({}, o)).toBe(true);
    expect(concernsChange({}, event)).toBe(false);
    expect(concernsChange({}, token)).toBe(false);
  });
});
