import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from './exec.js';

/**
 * One build at a time per cache and architecture: two builds filling the same cache (two test
 * files starting on a cold CI machine) would pack, extract and compile the same things over each
 * other, while an x64 build need not wait for another build's ARM compiles. The lock is a
 * directory (mkdir is atomic) holding the owner's pid; a lock whose owner is gone is taken over,
 * so a killed build never blocks the next one.
 */
export async function withCacheLock<T>(cache: string, name: string, work: () => Promise<T>): Promise<T> {
  mkdirSync(cache, { recursive: true });
  const lock = join(cache, `.lock-${name}`);
  let waitingSince: number | undefined;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!ownerAlive(lock)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (waitingSince === undefined) {
        waitingSince = Date.now();
        log(`waiting for another build using ${cache} (${name})`);
      }
      await sleep(500);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function ownerAlive(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    // Just made by its owner, pid not written yet: alive unless that was long ago.
    try { return Date.now() - statSync(lock).mtimeMs < 10_000; } catch { return false; }
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
