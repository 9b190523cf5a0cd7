import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppGrantStatus, CloudFrame, RouteCounters } from '../../protocol/index.js';
import { openSqliteStore, type SqliteStore } from '../store/sqliteStore.js';
import { RoutedMessages } from '../telemetry/routedMessages.js';
import { RouteTraffic } from './routeTraffic.js';

const counters = (route: string, forwarded: number): RouteCounters => ({
  route, destination: 'cloud', matched: forwarded, queued: forwarded, forwarded, dropped: { queueFull: 0, oversized: 0 },
  queueDepth: 0, queueBytes: 0, connected: true, lastError: null, lastForwardedAt: null,
});
const grant = (workload: string, published: number): AppGrantStatus => ({
  workload, username: `app-${workload}`, publish: ['apps/alerts/#'], subscribe: [], published, delivered: 0, refused: 0,
});

describe('RouteTraffic: the counters nodes report in routeStatus frames', () => {
  let dir: string;
  let store: SqliteStore;
  let messages: RoutedMessages;
  let traffic: RouteTraffic;
  const replies: CloudFrame[] = [];
  const reply = (frame: CloudFrame) => { replies.push(frame); };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgefleet-routetraffic-'));
    store = await openSqliteStore({ path: join(dir, 'store.db') });
    messages = new RoutedMessages(join(dir, 'routed.db'));
    traffic = new RouteTraffic({ store, messages, log: pino({ level: 'silent' }), sendTo: () => false });
  });
  afterEach(async () => {
    messages.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps each node\'s last app grants beside its route counters, replaced by the next report', () => {
    expect(traffic.grantsOf('edge-1')).toBeNull();
    traffic.onFrame('edge-1', { type: 'routeStatus', routes: [counters('up', 2)], appGrants: [grant('alerter', 2)], appGrantsOmitted: 0 }, reply);
    traffic.onFrame('edge-2', { type: 'routeStatus', routes: [], appGrants: [grant('other', 9)], appGrantsOmitted: 4 }, reply);
    expect(traffic.grantsOf('edge-1')).toMatchObject({ items: [grant('alerter', 2)], omitted: 0 });
    expect(traffic.grantsOf('edge-2')).toMatchObject({ items: [grant('other', 9)], omitted: 4 });
    expect(traffic.countersOf('up').get('edge-1')?.counters.forwarded).toBe(2);
    // The workload lost its grant: the next report has none, and so does the cloud.
    traffic.onFrame('edge-1', { type: 'routeStatus', routes: [counters('up', 3)], appGrants: [], appGrantsOmitted: 0 }, reply);
    expect(traffic.grantsOf('edge-1')?.items).toEqual([]);
    expect(replies).toEqual([]);
  });

  it('an edge older than app grants (no field): no grants known, its route counters kept', () => {
    traffic.onFrame('old-edge', { type: 'routeStatus', routes: [counters('up', 1)] }, reply);
    expect(traffic.grantsOf('old-edge')).toBeNull();
    expect(traffic.countersOf('up').get('old-edge')?.counters.forwarded).toBe(1);
  });
});
