import { describe, expect, it } from 'vitest';
import { RouteSchema } from '../protocol/index.js';
import { renderNodeDataFlows } from './nodeData.js';

const now = new Date('2025-01-01T10:05:00Z');
const alerter = { workload: 'alerter', username: 'app-alerter', publish: ['apps/alerts/#'], subscribe: ['ef/devices/+/telemetry'], published: 4, delivered: 9, refused: 1 };
const route = (name: string, nodes: unknown[]) => RouteSchema.parse({
  kind: 'Route', metadata: { name }, spec: { source: { topics: ['apps/alerts/#'] }, destination: { type: 'cloud' } }, status: { nodes },
});

describe('edgectl get node: app grants and routes of the node', () => {
  it('grants with counters and how old the report is; the node\'s routes with its own counters only', () => {
    const text = renderNodeDataFlows('edge-1', {
      grants: { node: 'edge-1', observedAt: '2025-01-01T10:04:55Z', items: [alerter], omitted: 0 },
      routes: [
        route('alerts-up', [
          { node: 'edge-1', destination: 'cloud', connected: true, matched: 5, queued: 5, forwarded: 5, dropped: { queueFull: 0, oversized: 1 }, queueDepth: 0, queueBytes: 0, lastError: null, lastForwardedAt: null, observedAt: '2025-01-01T10:04:55Z' },
          { node: 'edge-2', destination: 'cloud', connected: true, matched: 99, queued: 99, forwarded: 99, dropped: { queueFull: 0, oversized: 0 }, queueDepth: 0, queueBytes: 0, lastError: null, lastForwardedAt: null, observedAt: '2025-01-01T10:04:55Z' },
        ]),
        route('elsewhere', [{ node: 'edge-2' }]),
      ],
    }, now);
    expect(text).toMatch(/APP GRANTS \(1; counters since the node's edgecore started, last report 5s ago\)\nWORKLOAD\s+USERNAME/);
    expect(text).toMatch(/alerter\s+app-alerter\s+apps\/alerts\/#\s+ef\/devices\/\+\/telemetry\s+4\s+9\s+1\n/);
    expect(text).toMatch(/ROUTES \(1\)\nNODE\/ROUTE/);
    expect(text).toMatch(/alerts-up\s+cloud\s+yes\s+5\s+5\s+0\s+0\/1/);
    expect(text).not.toContain('99');
    expect(text).not.toContain('elsewhere');
  });

  it('says when the cloud has no report, when grants were left out, and leaves out what an older cloudcore lacks', () => {
    expect(renderNodeDataFlows('edge-1', { grants: { node: 'edge-1', observedAt: null, items: [], omitted: 0 }, routes: [] }, now))
      .toBe('\nAPP GRANTS\nNot reported to this cloudcore since it started (the node is not linked to it, or its edgecore is older than app grants).\n\nROUTES (0)\nNo routes on this node.\n');
    expect(renderNodeDataFlows('edge-1', { grants: { node: 'edge-1', observedAt: '2025-01-01T10:04:00Z', items: [alerter], omitted: 3 }, routes: null }, now))
      .toMatch(/^\nAPP GRANTS \(1, 3 more not reported; counters since the node's edgecore started, last report 1m ago\)\n/);
    expect(renderNodeDataFlows('edge-1', { grants: null, routes: null }, now)).toBe('');
  });
});
