import { arch, hostname, loadavg, platform, uptime } from 'node:os';
import type { EdgeHostStatus } from '../../protocol/edgeStatus.js';
import { readDisk, readMemory } from '../hostReadings.js';

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
    memory: { ...readMemory(), edgecoreRssBytes: process.memoryUsage.rss() },
    disk: diskOf(dataDir),
  };
}

function diskOf(dataDir: string): EdgeHostStatus['disk'] {
  try {
    const { path, totalBytes, availableBytes } = readDisk(dataDir);
    return { path, totalBytes, availableBytes };
  } catch {
    return null;
  }
}
