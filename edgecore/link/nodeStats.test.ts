import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EdgeFrameSchema, NodeStatsSampleSchema, parseFrame } from '../../protocol/index.js';
import { cpuPercentBetween, NodeStatsSampler, parseProcStat } from './nodeStats.js';

const PROC_STAT = `cpu  4705 356 584 3699 23 23 0 0 0 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
intr 114930548 113199788 3 0 5 263 0 4 [... lots more numbers ...]
`;

describe('node stats parsing', () => {
  it('reads the aggregate cpu line, iowait counted as idle', () => {
    expect(parseProcStat(PROC_STAT)).toEqual({ busy: 4705 + 356 + 584 + 23, total: 4705 + 356 + 584 + 3699 + 23 + 23 });
    expect(parseProcStat('nothing here')).toBeUndefined();
  });

  it('turns two readings into a busy share', () => {
    expect(cpuPercentBetween({ busy: 100, total: 1000 }, { busy: 350, total: 2000 })).toBe(25);
    expect(cpuPercentBetween({ busy: 100, total: 1000 }, { busy: 100, total: 1000 })).toBeUndefined();
    // A counter that went backwards (never should) is clamped, not negative.
    expect(cpuPercentBetween({ busy: 500, total: 1000 }, { busy: 100, total: 1100 })).toBe(0);
  });
});

describe('NodeStatsSampler on this machine', () => {
  it('produces a sample that fits the wire schema, handed out once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-stats-'));
    try {
      const sampler = new NodeStatsSampler({ dataDir: dir, intervalMs: 60_000 });
      await sampler.start();
      sampler.stop();
      await new Promise((r) => setTimeout(r, 50));
      let sample;
      // /proc/stat ticks at USER_HZ (10 ms): retry until some time has passed.
      for (let i = 0; i < 50 && !sample; i++) {
        sample = await sampler.sample();
        if (!sample) await new Promise((r) => setTimeout(r, 20));
      }
      expect(sample).toBeDefined();
      expect(NodeStatsSampleSchema.parse(sample)).toEqual(sample);
      expect(sample!.memoryTotalBytes).toBeGreaterThan(0);
      expect(sample!.diskTotalBytes).toBeGreaterThan(0);
      expect(sampler.take()).toEqual(sample);
      expect(sampler.take()).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ping frame with round trip and stats', () => {
  const stats = { cpuPercent: 12.5, memoryUsedBytes: 1024, memoryTotalBytes: 4096, diskUsedBytes: 10, diskTotalBytes: 100 };

  it('parses with or without the optional fields', () => {
    expect(parseFrame(EdgeFrameSchema, JSON.stringify({ type: 'ping', t: 1 })).ok).toBe(true);
    const parsed = parseFrame(EdgeFrameSchema, JSON.stringify({ type: 'ping', t: 1, rttMs: 3.5, stats }));
    expect(parsed).toEqual({ ok: true, frame: { type: 'ping', t: 1, rttMs: 3.5, stats } });
  });

  it('refuses bad values naming the field', () => {
    const bad = parseFrame(EdgeFrameSchema, JSON.stringify({ type: 'ping', t: 1, stats: { ...stats, cpuPercent: 250 } }));
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.field).toBe('stats.cpuPercent');
    const rtt = parseFrame(EdgeFrameSchema, JSON.stringify({ type: 'ping', t: 1, rttMs: -1 }));
    expect(!rtt.ok && rtt.error.field).toBe('rttMs');
    // A field this version does not know (a newer edge's) is dropped, not refused (docs/sync.md, Version skew).
    const extra = parseFrame(EdgeFrameSchema, JSON.stringify({ type: 'ping', t: 1, stats: { ...stats, gpu: 1 } }));
    expect(extra).toEqual({ ok: true, frame: { type: 'ping', t: 1, stats }, ignored: ['stats.gpu'] });
  });
});
