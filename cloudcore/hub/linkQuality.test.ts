import { describe, expect, it } from 'vitest';
import { LINK_WINDOW_MS, LinkQuality, MAX_OPENS_KEPT } from './linkQuality.js';

describe('LinkQuality', () => {
  it('knows nothing of a node that never connected', () => {
    expect(new LinkQuality().view('edge-1', 0)).toBeNull();
  });

  it('counts reopens within the last hour, not the first connect', () => {
    const q = new LinkQuality();
    q.recordOpen('edge-1', 1_000);
    expect(q.view('edge-1', 2_000)).toMatchObject({ reconnectsLastHour: 0, connectedAt: 1_000 });
    q.recordOpen('edge-1', 10_000);
    q.recordOpen('edge-1', 20_000);
    expect(q.view('edge-1', 30_000)).toMatchObject({ reconnectsLastHour: 2, reconnectsCapped: false, connectedAt: 20_000 });
    // An hour after the second open, only the third is still within the window.
    expect(q.view('edge-1', 10_000 + LINK_WINDOW_MS + 1)?.reconnectsLastHour).toBe(1);
    // Long after: nothing in the window, but the current session's start is still known.
    expect(q.view('edge-1', 20_000 + 2 * LINK_WINDOW_MS)).toMatchObject({ reconnectsLastHour: 0, connectedAt: 20_000 });
  });

  it('bounds what it remembers of a flapping link and says the count is a lower bound', () => {
    const q = new LinkQuality();
    for (let i = 0; i < MAX_OPENS_KEPT + 50; i++) q.recordOpen('edge-1', i);
    const view = q.view('edge-1', MAX_OPENS_KEPT + 50)!;
    expect(view.reconnectsLastHour).toBe(MAX_OPENS_KEPT);
    expect(view.reconnectsCapped).toBe(true);
  });

  it('keeps the last and a smoothed round trip, ignoring nonsense', () => {
    const q = new LinkQuality();
    q.recordRtt('edge-1', 5); // not connected yet: nowhere to put it
    q.recordOpen('edge-1', 0);
    expect(q.view('edge-1', 0)).toMatchObject({ lastRttMs: null, rttMs: null });
    q.recordRtt('edge-1', 8);
    expect(q.view('edge-1', 0)).toMatchObject({ lastRttMs: 8, rttMs: 8 });
    q.recordRtt('edge-1', 16);
    expect(q.view('edge-1', 0)).toMatchObject({ lastRttMs: 16, rttMs: 9 });
    q.recordRtt('edge-1', Number.NaN);
    q.recordRtt('edge-1', -1);
    expect(q.view('edge-1', 0)?.lastRttMs).toBe(16);
  });

  it('forgets a deleted node', () => {
    const q = new LinkQuality();
    q.recordOpen('edge-1', 0);
    q.forget('edge-1');
    expect(q.view('edge-1', 0)).toBeNull();
  });
});
