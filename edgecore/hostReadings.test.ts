import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diskFromStatfs, readDisk, readMemory } from './hostReadings.js';

describe('host readings', () => {
  it('counts disk used as df does and available as edgecore may use it (reserved blocks excluded)', () => {
    expect(diskFromStatfs('/data', { bsize: 4096, blocks: 100, bfree: 40, bavail: 30 }))
      .toEqual({ path: '/data', totalBytes: 100 * 4096, availableBytes: 30 * 4096, usedBytes: 60 * 4096 });
  });

  it.runIf(existsSync('/proc/meminfo'))('reads memory as /proc/meminfo counts it: MemTotal, and MemAvailable (not MemFree)', () => {
    const kib = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)![1]) * 1024;
    const meminfo = readFileSync('/proc/meminfo', 'utf8');
    const memory = readMemory();
    expect(memory.totalBytes).toBe(kib(meminfo, 'MemTotal'));
    // Both move while the machine runs: close, within 256 MiB.
    expect(Math.abs(memory.availableBytes - kib(meminfo, 'MemAvailable'))).toBeLessThan(256 * 1024 * 1024);
  });

  it('reads the disk holding a directory, and throws for one that is gone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-host-'));
    try {
      const disk = readDisk(dir);
      expect(disk.path).toBe(dir);
      expect(disk.totalBytes).toBeGreaterThan(0);
      expect(disk.usedBytes + disk.availableBytes).toBeLessThanOrEqual(disk.totalBytes);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => readDisk(dir)).toThrow();
  });
});
