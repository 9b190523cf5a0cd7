import { statfsSync } from 'node:fs';
import { arch, freemem, hostname, loadavg, platform, totalmem, uptime } from 'node:os';
import { resolve } from 'node:path';
import type { EdgeHostStatus } from '../../protocol/edgeStatus.js';

/**
 * Disk and memory of the node as the field engineer needs them: is the data disk filling up,
 * is the node short of memory, how big is edgecore itself. Read on every request (cheap
 * syscalls), never cached, so the page shows the node as it is now.
 */
export function hostStatus(dataDir: string): EdgeHostStatus {
  return {
    hostname: hostname(),
    os: platform(),
    arch: arch(),
    uptimeSeconds: Math.round(uptime()),
    loadAverage: loadavg().map((n) => Math.round(n * 100) / 100),
    // libuv reads MemAvailable on Linux: what can be allocated without swapping, not just "free".
    memory: { totalBytes: totalmem(), availableBytes: freemem(), edgecoreRssBytes: process.memoryUsage.rss() },
    disk: diskOf(dataDir),
  };
}

function diskOf(dataDir: string): EdgeHostStatus['disk'] {
  const path = resolve(dataDir);
  try {
    const fs = statfsSync(path);
    // bavail, not bfree: blocks reserved for root are not available to edgecore's files.
    return { path, totalBytes: fs.blocks * fs.bsize, availableBytes: fs.bavail * fs.bsize };
  } catch {
    return null;
  }
}
