import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RoutedMessages } from './routedMessages.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function open(max?: number): RoutedMessages {
  const dir = mkdtempSync(join(tmpdir(), 'routed-'));
  dirs.push(dir);
  return new RoutedMessages(join(dir, 'routed.db'), max);
}

const frame = (stream: string, seqs: number[]) => ({
  type: 'routed' as const, route: 'alerts', stream,
  messages: seqs.map((seq) => ({ seq, topic: 'apps/alerts/fire', payload: Buffer.from(`m${seq}`).toString('base64'), t: '2026-01-01T00:00:00Z' })),
});

describe('routed messages', () => {
  it('keeps each (node, route, stream, seq) once: a resend after a lost ack is ignored', () => {
    const store = open();
    expect(store.append('edge-1', frame('stream-aaaa', [1, 2, 3]))).toBe(3);
    expect(store.append('edge-1', frame('stream-aaaa', [2, 3, 4]))).toBe(1);
    // Another stream (a re-created route, a new edge database) counts again from 1.
    expect(store.append('edge-1', frame('stream-bbbb', [1]))).toBe(1);
    expect(store.append('edge-2', frame('stream-aaaa', [1]))).toBe(1);
    const all = store.list('alerts', { after: 0, limit: 100 });
    expect(all.map((m) => [m.node, m.seq, m.payload.toString()])).toEqual([
      ['edge-1', 1, 'm1'], ['edge-1', 2, 'm2'], ['edge-1', 3, 'm3'], ['edge-1', 4, 'm4'], ['edge-1', 1, 'm1'], ['edge-2', 1, 'm1'],
    ]);
    expect(store.list('alerts', { after: all[3]!.id, limit: 100, node: 'edge-2' }).map((m) => m.node)).toEqual(['edge-2']);
    store.close();
  });

  it('keeps the newest maxPerRoute of a route', () => {
    const store = open(3);
    store.append('edge-1', frame('stream-aaaa', [1, 2, 3, 4, 5]));
    expect(store.list('alerts', { after: 0, limit: 100 }).map((m) => m.seq)).toEqual([3, 4, 5]);
    store.close();
  });
});
