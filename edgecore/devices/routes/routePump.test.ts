import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RouteLimitsSchema, type RoutedFrame } from '../../../protocol/index.js';
import { CloudRouteDestination, type RouteUplink } from './cloudDestination.js';
import { RoutePump } from './routePump.js';
import { RouteQueue } from './routeQueue.js';

/**
 * The pump over a real queue (SQLite) and the cloud destination, with the link as the boundary:
 * the frames it sends are recorded and the cloud's acks are given by hand, as the link would.
 */

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

const limits = RouteLimitsSchema.parse({ maxMessagesPerSecond: 100_000, maxQueuedMessages: 100_000 });

function setUp(messages: number) {
  const dir = mkdtempSync(join(tmpdir(), 'route-pump-'));
  dirs.push(dir);
  const queue = new RouteQueue(join(dir, 'routes.db'));
  for (let i = 1; i <= messages; i++) queue.enqueue('r', limits, `apps/t${i % 3}`, Buffer.from(String(i)), '2026-01-01T00:00:00Z');
  const sent: RoutedFrame[] = [];
  let up = true;
  const uplink: RouteUplink = {
    send: (frame) => { if (!up) return false; if (frame.type === 'routed') sent.push(frame); return true; },
    up: () => up,
  };
  const cloud = new CloudRouteDestination('r', () => queue.stream('r'), uplink);
  const errors: string[] = [];
  const pump = new RoutePump('r', limits, queue, cloud, (_route, error) => errors.push(error));
  return { queue, sent, cloud, pump, errors, setUp: (value: boolean) => { up = value; } };
}

const seqs = (frames: RoutedFrame[]) => frames.map((f) => [f.messages[0]!.seq, f.messages.at(-1)!.seq]);
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('RoutePump to the cloud', () => {
  it('keeps four batches in flight, and an ack confirms every batch before it', async () => {
    const t = setUp(1_000);
    t.pump.kick();
    // Before: one batch, then nothing until its ack (a round trip per 100 messages).
    expect(seqs(t.sent)).toEqual([[1, 100], [101, 200], [201, 300], [301, 400]]);
    t.cloud.onAck(200);
    await settle();
    expect(t.queue.size('r').depth).toBe(800);
    expect(seqs(t.sent).slice(4)).toEqual([[401, 500], [501, 600]]);
    t.cloud.onAck(600);
    await settle();
    expect(t.queue.size('r').depth).toBe(400);
    expect(t.queue.counters('r').forwarded).toBe(600);
    await t.pump.close();
    t.queue.close();
  });

  it('after a lost link sends every unconfirmed message again, from the oldest and in order', async () => {
    const t = setUp(500);
    t.pump.kick();
    t.cloud.onAck(100);
    await settle();
    const before = t.sent.length;
    t.setUp(false);
    t.cloud.onLinkDown();
    await settle();
    expect(t.errors).toEqual(['the cloud link went down: messages wait in the queue']);
    expect(t.queue.size('r').depth).toBe(400);
    t.setUp(true);
    t.pump.wake();
    // The resend starts at the oldest unconfirmed message, whatever was in flight before.
    expect(seqs(t.sent.slice(before))).toEqual([[101, 200], [201, 300], [301, 400], [401, 500]]);
    t.cloud.onAck(500);
    await settle();
    expect(t.queue.size('r').depth).toBe(0);
    expect(t.queue.counters('r').forwarded).toBe(500);
    // Every message the cloud was sent on the last link, in seq order, each once.
    const last = t.sent.slice(before).flatMap((f) => f.messages.map((m) => m.seq));
    expect(last).toEqual(Array.from({ length: 400 }, (_, i) => i + 101));
    await t.pump.close();
    t.queue.close();
  });
});
