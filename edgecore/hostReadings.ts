import { statfsSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { resolve } from 'node:path';

/**
 * The node's memory and data disk, read one way for every view of them: the local status page
 * (local/hostStatus.ts) and the samples the link sends to the cloud (link/nodeStats.ts). Cheap
 * syscalls, read when asked, never cached.
 */

export interface MemoryReading {
  totalBytes: number;
  /** What can be allocated without swapping (not just "free"); used = total − available, as `free` counts. */
  availableBytes: number;
}

/** libuv reads MemTotal and MemAvailable from /proc/meminfo on Linux, and the OS's figures elsewhere. */
export function readMemory(): MemoryReading {
  return { totalBytes: totalmem(), availableBytes: freemem() };
}

export interface DiskReading {
  /** The directory asked for, absolute. */
  path: string;
  totalBytes: number;
  /** Free to edgecore's files: blocks reserved for root are not counted (bavail, not bfree). */
  availableBytes: number;
  /** As `df` counts it: (blocks − bfree) × bsize. */
  usedBytes: number;
}

/** Pure: one statfs result as total, available and used bytes. */
export function diskFromStatfs(path: string, s: { bsize: number; blocks: number; bfree: number; bavail: number }): DiskReading {
  return {
    path,
    totalBytes: s.blocks * s.bsize,
    availableBytes: s.bavail * s.bsize,
    usedBytes: Math.max(s.blocks - s.bfree, 0) * s.bsize,
  };
}

/** The filesystem holding `dir` (throws when it cannot be read, e.g. the directory is gone). */
export function readDisk(dir: string): DiskReading {
  const path = resolve(dir);
  return diskFromStatfs(path, statfsSync(path));
}
