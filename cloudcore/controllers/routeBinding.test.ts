import { describe, expect, it } from 'vitest';
import { NodeSchema, RouteSchema, type Node, type Route } from '../../protocol/index.js';
import { desiredNodeRoutes, planNodeRoutes } from './routeBinding.js';

const node = (name: string, labels: Record<string, string>, phase: 'Pending' | 'Ready' = 'Ready'): Node => NodeSchema.parse({
  kind: 'Node', metadata: { name, labels },
  status: { phase, since: '2026-01-01T00:00:00Z', lastSeen: null, epoch: null, ackedRevision: 0, agent: null },
});

const route = (name: string, spec: Record<string, unknown>): Route => RouteSchema.parse({
  kind: 'Route', metadata: { name }, spec: { source: { topics: ['apps/alerts/#'] }, destination: { type: 'cloud' }, ...spec },
});

describe('route binding', () => {
  const nodes = [node('edge-1', { site: 'a' }), node('edge-2', { site: 'b' }), node('edge-3', { site: 'a' }, 'Pending')];

  it('binds a route to every joined node its selector matches, as <route>.<node>', () => {
    const desired = desiredNodeRoutes([route('alerts', { selector: { matchLabels: { site: 'a' } } })], nodes, new Map());
    expect([...desired.keys()]).toEqual(['alerts.edge-1']);
    expect(desired.get('alerts.edge-1')).toMatchObject({ nodeName: 'edge-1', route: 'alerts', resolved: { missing: [] } });
  });

  it('resolves the destination password from its Secret, and names a missing one', () => {
    const mqtt = { type: 'mqtt', url: 'mqtts://broker:8883', username: 'u', passwordSecret: { name: 'broker', key: 'password' } };
    const found = desiredNodeRoutes([route('up', { destination: mqtt })], nodes, new Map([['broker', { password: 's3cret' }]]));
    expect(found.get('up.edge-1')!.resolved).toEqual({ password: 's3cret', missing: [] });
    const missing = desiredNodeRoutes([route('up', { destination: mqtt })], nodes, new Map());
    expect(missing.get('up.edge-2')!.resolved).toEqual({ missing: ['secret "broker" key "password"'] });
  });

  it('plans creates, updates and removals against what exists', () => {
    const before = planNodeRoutes(desiredNodeRoutes([route('alerts', {})], nodes, new Map()), []);
    expect(before.create.map((r) => r.metadata.name)).toEqual(['alerts.edge-1', 'alerts.edge-2']);
    const existing = before.create.map((r) => ({ ...r, metadata: { ...r.metadata, resourceVersion: 1 } }));
    expect(planNodeRoutes(desiredNodeRoutes([route('alerts', {})], nodes, new Map()), existing)).toMatchObject({ create: [], update: [], remove: [] });
    const narrowed = planNodeRoutes(desiredNodeRoutes([route('alerts', { selector: { matchLabels: { site: 'b' } }, limits: { maxMessagesPerSecond: 5 } })], nodes, new Map()), existing);
    expect(narrowed.remove.map((r) => r.metadata.name)).toEqual(['alerts.edge-1']);
    expect(narrowed.update.map((r) => [r.metadata.name, r.spec.limits.maxMessagesPerSecond])).toEqual([['alerts.edge-2', 5]]);
  });
});
