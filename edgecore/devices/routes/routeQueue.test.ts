import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RouteLimitsSchema } from '../../../protocol/index.js';
import { RouteQueue } from './routeQueue.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function path(): string {
  const dir = mkdtempSync(join(tmpdir(), 'route-queue-'));
  dirs.push(dir);
  return join(dir, 'routes.db');
}

const limits = RouteLimitsSchema.parse({ maxQueuedMessages: 3, maxMessageBytes: 10 });
const put = (q: RouteQueue, text: string) => q.enqueue('r', limits, 'apps/x', Buffer.from(text), '2026-01-01T00:00:00Z');

describe('route queue', () => {
  it('keeps order, drops the oldest past its bound, refuses oversized, and counts each', () => {
    const q = new RouteQueue(path());
    for (const m of ['a', 'b', 'c', 'd']) put(q, m);
    expect(put(q, 'far-too-long')).toEqual({ queued: false, reason: 'oversized' });
    expect(q.head('r', 10).map((m) => [m.seq, m.payload.toString()])).toEqual([[2, 'b'], [3, 'c'], [4, 'd']]);
    expect(q.counters('r')).toEqual({ matched: 5, queued: 4, forwarded: 0, dropped: { queueFull: 1, oversized: 1 } });
    expect(q.confirm('r', 3)).toBe(2);
    expect(q.size('r')).toEqual({ depth: 1, bytes: 1 });
    expect(q.counters('r').forwarded).toBe(2);
    q.close();
  });

  it('holds queue, counters, sequence and stream across a reopen; purge forgets the route', () => {
    const file = path();
    const first = new RouteQueue(file);
    put(first, 'a');
    put(first, 'b');
    const stream = first.stream('r');
    first.close();
    const second = new RouteQueue(file);
    expect(second.stream('r')).toBe(stream);
    put(second, 'c');
    expect(second.head('r', 10).map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(second.counters('r').queued).toBe(3);
    second.purge('r');
    expect(second.routes()).toEqual([]);
    expect(second.size('r').depth).toBe(0);
    expect(second.stream('r')).not.toBe(stream);
    second.close();
  });
});
