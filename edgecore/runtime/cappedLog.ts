import { appendFileSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Size-capped workload logs: `<logDir>/<name>.log` plus one rotated `<name>.log.1`.
 *
 * Format: raw lines, stdout and stderr interleaved in arrival order, no prefix — what the
 * program printed, as `kubectl logs` shows it. (Timestamps/stream tags would change what a
 * program's own structured logs look like; the runtime status carries start/finish times.)
 *
 * Bound: a write never makes the current file exceed `maxBytes`; when it would, the current file
 * first becomes `.log.1` (replacing the previous one). So disk use per workload ≤ 2 × maxBytes.
 * A single line longer than `maxBytes` keeps only its newest `maxBytes`.
 *
 * Writes are synchronous: they are small, ordered, and the runtime never needs to await them.
 */

export const DEFAULT_LOG_MAX_BYTES = 1024 * 1024;
/** A line with no newline after this many characters is cut and written as a line of its own. */
export const DEFAULT_MAX_LINE_CHARS = 64 * 1024;

/** Splits a decoded text stream into lines, keeping the unterminated rest for the next chunk. */
export class LineSplitter {
  private rest = '';

  constructor(private readonly maxLineChars = DEFAULT_MAX_LINE_CHARS) {}

  push(chunk: string): string[] {
    const parts = (this.rest + chunk).split('\n');
    this.rest = parts.pop() ?? '';
    // A program printing without newlines must not grow our memory without bound.
    while (this.rest.length > this.maxLineChars) {
      parts.push(this.rest.slice(0, this.maxLineChars));
      this.rest = this.rest.slice(this.maxLineChars);
    }
    return parts;
  }

  /** The unterminated rest at end of stream, as a final line (if any). */
  flush(): string[] {
    const rest = this.rest;
    this.rest = '';
    return rest === '' ? [] : [rest];
  }
}

export class CappedLogStore {
  private readonly sizes = new Map<string, number>();
  /** Followers of a log (`edgectl logs -f`), told of every appended batch. */
  private readonly followers = new Map<string, Set<(lines: string[]) => void>>();

  constructor(readonly logDir: string, readonly maxBytes = DEFAULT_LOG_MAX_BYTES) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
    // Owner-only: a workload's log is for the operator (edgectl logs), not for other workloads.
    mkdirSync(logDir, { recursive: true, mode: 0o700 });
  }

  /** Path of the current log file of `name`. */
  pathOf(name: string): string {
    assertSafeName(name);
    return join(this.logDir, `${name}.log`);
  }

  /** Appends whole lines (without their newline). */
  /** Subscribes to lines appended from now on; returns the unsubscribe function. */
  follow(name: string, onLines: (lines: string[]) => void): () => void {
    assertSafeName(name);
    const set = this.followers.get(name) ?? new Set();
    set.add(onLines);
    this.followers.set(name, set);
    return () => {
      set.delete(onLines);
      if (set.size === 0) this.followers.delete(name);
    };
  }

  append(name: string, lines: readonly string[]): void {
    if (lines.length === 0) return;
    for (const follower of this.followers.get(name) ?? []) follower([...lines]);
    const path = this.pathOf(name);
    let size = this.sizes.get(name) ?? fileSize(path);
    // Written in pieces of at most maxBytes so that what survives rotation stays contiguous.
    for (const piece of pieces(lines, this.maxBytes)) {
      if (size > 0 && size + piece.length > this.maxBytes) {
        renameSync(path, `${path}.1`);
        size = 0;
      }
      appendFileSync(path, piece, { mode: 0o600 });
      size += piece.length;
      this.sizes.set(name, size);
    }
  }

  /**
   * The last `n` lines of `name`, across the rotated and the current file, oldest first.
   * Reads backwards from the end in chunks, so a status page asking for ten lines of a 1 MiB
   * log reads a few KiB, not both files.
   */
  async readTail(name: string, n: number): Promise<string[]> {
    if (!(n > 0)) return [];
    const want = Math.floor(n);
    const path = this.pathOf(name);
    const chunks: Buffer[] = [];
    let newlines = 0;
    // Everything we write ends with a newline, so n lines need n + 1 newlines before them to be whole.
    for (const file of [path, `${path}.1`]) {
      newlines += await readBackwards(file, want + 1 - newlines, (chunk) => chunks.unshift(chunk));
      if (newlines > want) break;
    }
    const lines = Buffer.concat(chunks).toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-want);
  }

  /** Deletes both files of `name`. */
  delete(name: string): void {
    const path = this.pathOf(name);
    rmSync(path, { force: true });
    rmSync(`${path}.1`, { force: true });
    this.sizes.delete(name);
  }
}

/** Names become file names: refuse anything that could leave the log directory. */
function assertSafeName(name: string): void {
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new Error(`invalid workload name for a log file: ${JSON.stringify(name)}`);
  }
}

/**
 * Groups lines (newline added) into buffers of at most `maxBytes`. A line longer than that keeps
 * its newest bytes. Lines older than the newest 2 × maxBytes are dropped up front: they could
 * not survive the rotations the batch causes.
 */
export function pieces(lines: readonly string[], maxBytes: number): Buffer[] {
  const encoded: Buffer[] = [];
  let total = 0;
  for (let i = lines.length - 1; i >= 0 && total < 2 * maxBytes; i--) {
    const line = keepNewest(Buffer.from(`${lines[i]}\n`, 'utf8'), maxBytes);
    encoded.push(line);
    total += line.length;
  }
  encoded.reverse();
  const result: Buffer[] = [];
  let group: Buffer[] = [];
  let groupSize = 0;
  for (const line of encoded) {
    if (groupSize + line.length > maxBytes && group.length > 0) {
      result.push(Buffer.concat(group));
      group = [];
      groupSize = 0;
    }
    group.push(line);
    groupSize += line.length;
  }
  if (group.length > 0) result.push(Buffer.concat(group));
  return result;
}

/** The newest `maxBytes` of one line, starting at a UTF-8 character boundary. */
function keepNewest(line: Buffer, maxBytes: number): Buffer {
  if (line.length <= maxBytes) return line;
  let start = line.length - maxBytes;
  while (start < line.length && (line[start]! & 0xc0) === 0x80) start++;
  return line.subarray(start);
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0;
    throw err;
  }
}

const TAIL_CHUNK_BYTES = 16 * 1024;

/**
 * Hands `onChunk` the file's bytes from the end backwards (each chunk precedes the previous
 * one) until it has seen `newlines` newline characters or the file's start; returns how many
 * it saw. A missing file has none.
 */
async function readBackwards(path: string, newlines: number, onChunk: (chunk: Buffer) => void): Promise<number> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0;
    throw err;
  }
  try {
    let end = (await handle.stat()).size;
    let seen = 0;
    while (end > 0 && seen < newlines) {
      const start = Math.max(0, end - TAIL_CHUNK_BYTES);
      const chunk = Buffer.alloc(end - start);
      await handle.read(chunk, 0, chunk.length, start);
      for (const byte of chunk) if (byte === 0x0a) seen++;
      onChunk(chunk);
      end = start;
    }
    return seen;
  } finally {
    await handle.close();
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}
