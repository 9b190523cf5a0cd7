import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodeRouteSchema, type AppGrantStatus, type CloudFrame, type RoutedFrame, type RouteCounters } from '../../protocol/index.js';
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

describe('RouteTraffic: routed frames from an edge with several batches in flight', () => {
  let dir: string;
  let store: SqliteStore;
  let messages: RoutedMessages;
  let traffic: RouteTraffic;
  const errors: string[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgefleet-routetraffic-'));
    store = await openSqliteStore({ path: join(dir, 'store.db') });
    messages = new RoutedMessages(join(dir, 'routed.db'));
    const log = pino({ level: 'error' }, { write: (line: string) => { errors.push(line); } });
    traffic = new RouteTraffic({ store, messages, log, sendTo: () => false });
    await store.create(NodeRouteSchema.parse({
      kind: 'NodeRoute', metadata: { name: 'up.edge-1' },
      spec: { nodeName: 'edge-1', route: 'up', source: { topics: ['apps/#'] }, destination: { type: 'cloud' }, limits: {}, resolved: { missing: [] } },
    }));
  });
  afterEach(async () => {
    messages.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const frame = (from: number, to: number): RoutedFrame => ({
    type: 'routed', route: 'up', stream: 'stream-0001',
    messages: Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i, topic: 'apps/a', payload: Buffer.from(String(from + i)).toString('base64'), t: '2026-01-01T00:00:00Z' })),
  });
  const acksOf = (replies: CloudFrame[]) => replies.map((r) => (r.type === 'routedAck' ? r.seq : r.type));
  const until = async (done: () => boolean) => { for (let i = 0; i < 400 && !done(); i++) await new Promise((r) => setTimeout(r, 25)); };

  it('stores them in arrival order and acks each; after one it could not store, acks none past it until it comes again', async () => {
    const replies: CloudFrame[] = [];
    const reply = (f: CloudFrame) => { replies.push(f); };
    for (const [from, to] of [[1, 2], [3, 4], [5, 6]] as const) traffic.onFrame('edge-1', frame(from, to), reply);
    await until(() => replies.length === 3);
    expect(acksOf(replies)).toEqual([2, 4, 6]);

    // Another process holds routed.db's write lock: the next frame cannot be stored (busy, after 5 s).
    const holder = new Database(join(dir, 'routed.db'));
    holder.exec('BEGIN IMMEDIATE');
    traffic.onFrame('edge-1', frame(7, 8), reply);
    await until(() => errors.length > 0);
    expect(errors.join('')).toContain('could not store routed messages');
    holder.exec('ROLLBACK');
    holder.close();
    // A later batch of the same window stores fine, but an ack of 10 would confirm 7–8, which the cloud does not have.
    traffic.onFrame('edge-1', frame(9, 10), reply);
    await new Promise((r) => setTimeout(r, 200));
    expect(acksOf(replies)).toEqual([2, 4, 6]);
    // The edge sends again from the oldest unacked: acked as before.
    traffic.onFrame('edge-1', frame(7, 8), reply);
    traffic.onFrame('edge-1', frame(9, 10), reply);
    await until(() => replies.length === 5);
    expect(acksOf(replies)).toEqual([2, 4, 6, 8, 10]);
    expect(messages.list('up', { after: 0, limit: 100 }).map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  }, 20_000);
});
