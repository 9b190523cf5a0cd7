import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * What lets a process workload outlive edgecore across an agent upgrade (docs/install.md,
 * "Upgrade"), and the next edgecore take it over with the same pid:
 *
 * - Its stdout and stderr go into a named pipe (FIFO) in the log dir, not an anonymous pipe to
 *   edgecore. The workload holds the FIFO open for reading and writing, so when edgecore exits
 *   its writes never meet a pipe without readers (SIGPIPE would kill it): they wait in the FIFO
 *   (64 KiB) until the next edgecore opens it and reads on.
 * - `handover.json`: the workloads an edgecore left running on purpose (pid, start ticks, the
 *   generation and template it ran). Written only by a shutdown that keeps workloads; after a
 *   crash there is none, and the previous instance's workloads are ended as before.
 */

export const outputFifoPath = (logDir: string, name: string): string => join(logDir, `${name}.out`);

export interface OutputFifo {
  /** O_RDWR end for the child's stdout and stderr; close it in edgecore once the child has it. */
  childFd: number;
  /** edgecore's reading end. */
  reader: Socket;
}

/** A fresh FIFO for one run (a stale one could hold a previous run's bytes). */
export function makeOutputFifo(path: string): OutputFifo {
  rmSync(path, { force: true });
  execFileSync('mkfifo', ['-m', '0600', path]);
  const childFd = openSync(path, constants.O_RDWR);
  try {
    return { childFd, reader: openFifoReader(path) };
  } catch (err) {
    closeSync(childFd);
    throw err;
  }
}

/** Opens the reading end without waiting for a writer (an adopted workload is one already). */
export function openFifoReader(path: string): Socket {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return new Socket({ fd, readable: true, writable: false });
}

const HandedOverSchema = z.strictObject({
  name: z.string().min(1).max(253),
  pid: z.number().int().min(2),
  startTicks: z.number().int().nonnegative(),
  generation: z.number().int().nonnegative(),
  templateKey: z.string().max(1_000_000),
  startedMs: z.number().int().nonnegative(),
  restarts: z.number().int().nonnegative(),
});
export type HandedOver = z.infer<typeof HandedOverSchema>;

const handoverPath = (logDir: string): string => join(logDir, 'handover.json');

export function writeHandover(logDir: string, workloads: HandedOver[]): void {
  const tmp = `${handoverPath(logDir)}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(workloads), { mode: 0o600 });
  renameSync(tmp, handoverPath(logDir));
}

/** The workloads the previous edgecore handed over (read once: the file is removed). */
export function takeHandover(logDir: string): { workloads: HandedOver[]; problem?: string } {
  let text: string;
  try {
    text = readFileSync(handoverPath(logDir), 'utf8');
  } catch {
    return { workloads: [] };
  }
  rmSync(handoverPath(logDir), { force: true });
  try {
    return { workloads: z.array(HandedOverSchema).max(10_000).parse(JSON.parse(text)) };
  } catch (err) {
    return { workloads: [], problem: `handover.json does not parse: ${(err as Error).message}` };
  }
}
