import { describe, expect, it } from 'vitest';
import { RouteSchema } from '../protocol/index.js';
import { routeCounterRow, routeRow } from './routeFormat.js';

describe('route rows', () => {
  it('name the source filters, the destination and the node count', () => {
    const route = RouteSchema.parse({
      kind: 'Route', metadata: { name: 'to-ops' },
      spec: { source: { topics: ['ef/devices/+/telemetry', 'apps/alerts/#'] }, destination: { type: 'mqtt', url: 'mqtts://broker:8883', topicPrefix: 'site-7/' } },
      status: { nodes: [{ node: 'edge-1' }] },
    });
    expect(routeRow(route)).toEqual(['to-ops', 'ef/devices/+/telemetry,apps/alerts/#', 'mqtts://broker:8883 (prefix site-7/)', '1']);
  });

  it('show counters, drops by reason, and the last error; "-" for what a node has not reported', () => {
    expect(routeCounterRow('edge-1', {
      destination: 'mqtt', connected: false, matched: 10, forwarded: 4, queueDepth: 3, dropped: { queueFull: 2, oversized: 1 }, lastError: 'ECONNREFUSED',
    })).toEqual(['edge-1', 'mqtt', 'no', '10', '4', '3', '2/1', 'ECONNREFUSED']);
    expect(routeCounterRow('edge-2', {})).toEqual(['edge-2', '-', '-', '-', '-', '-', '-', '']);
  });
});
