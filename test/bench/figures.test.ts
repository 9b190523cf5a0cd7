import { describe, expect, it } from 'vitest';
import { idleFigures, statsDelta, summarizeLatencies, sumStats, wireDelta, wsHeaderBytes } from './figures.js';
import { frameType } from './wireCounters.js';
import type { LinkStats } from '../../edgecore/link/cloudLink.js';

const stats = (bytesIn: number, bytesOut: number): LinkStats =>
  ({ connects: 1, syncFrames: 0, snapshots: 0, changesReceived: 0, upstreamSent: 0, errorsFromCloud: 0, bytesIn, bytesOut });

describe('fan-out figures', () => {
  it('sizes RFC 6455 headers by payload length and masking', () => {
    expect(wsHeaderBytes(31, false)).toBe(2);
    expect(wsHeaderBytes(31, true)).toBe(6);
    expect(wsHeaderBytes(126, false)).toBe(4);
    expect(wsHeaderBytes(65_535, true)).toBe(8);
    expect(wsHeaderBytes(65_536, false)).toBe(10);
  });

  it('takes nearest-rank percentiles', () => {
    const s = summarizeLatencies(Array.from({ length: 100 }, (_, i) => 100 - i));
    expect(s).toEqual({ count: 100, min: 1, p50: 50, p90: 90, p99: 99, max: 100 });
    expect(summarizeLatencies([])).toEqual({ count: 0, min: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });

  it('sums and subtracts link stats', () => {
    const total = sumStats([stats(10, 20), stats(1, 2)]);
    expect(total.bytesIn).toBe(11);
    expect(total.connects).toBe(2);
    expect(statsDelta(stats(1, 2), stats(5, 9))).toMatchObject({ bytesIn: 4, bytesOut: 7, connects: 0 });
  });

  it('turns one heartbeat per node per 30 s into per-minute rates', () => {
    // 2 nodes, 60 s: each sent 2 pings (31 B, masked) and got 2 pongs (31 B).
    const wire = {
      out: { ping: { frames: 4, payloadBytes: 124, headerBytes: 24 } },
      in: { pong: { frames: 4, payloadBytes: 124, headerBytes: 8 } },
      socketBytesWritten: 148, socketBytesRead: 132,
    };
    const f = idleFigures(2, 60, 30, stats(124, 124), wireDelta({ out: {}, in: {}, socketBytesWritten: 0, socketBytesRead: 0 }, wire));
    expect(f.framesPerNodePerMinute).toBe(4);
    expect(f.expectedFramesPerNodePerMinute).toBe(4);
    expect(f.appBytesPerNodePerMinute).toBe(124);
    expect(f.wsBytesPerNodePerMinute).toBe(140);
    expect(f.tcpPayloadBytesPerNodePerMinute).toBe(140);
    expect(f.estimatedIpBytesPerNodePerMinute).toBe(140 + 4 * 52);
    expect(f.appKbitPerSecondPerNode).toBeCloseTo((124 * 8) / 1000 / 60);
  });

  it('reads the frame type from the first bytes of a frame', () => {
    expect(frameType('{"type":"sync","mode":"delta"')).toBe('sync');
    expect(frameType('[1,2]')).toBe('other');
  });
});
