import { closeSync, createReadStream, existsSync, fchmodSync, fstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AuditRecordSchema, type AuditRecord } from '../../protocol/index.js';
import { matchesAudit, NewestRecords, type AuditFilter } from './auditQuery.js';

/**
 * cloudcore's audit log: `audit.log` in the data dir, one JSON line per audited request, mode
 * 0600, rotated by size (`audit.log.1` is the newest rotated file, `audit.log.<files>` the
 * oldest kept). Lines are written synchronously, in order, as requests finish: a line is on
 * disk (in the page cache) before the next request's. Its own file, apart from the process log,
 * so a log shipper or a `--log-level` cannot drop it.
 */

export const AUDIT_FILE_NAME = 'audit.log';

export interface AuditFileOptions {
  dir: string;
  /** Size at which the current file is rotated. */
  maxBytes: number;
  /** Rotated files kept besides the current one (the oldest is deleted). */
  files: number;
}

export function auditFilePaths(opts: Pick<AuditFileOptions, 'dir' | 'files'>): string[] {
  const current = join(opts.dir, AUDIT_FILE_NAME);
  return [current, ...Array.from({ length: opts.files }, (_, i) => `${current}.${i + 1}`)];
}

export class AuditFile {
  private fd: number;
  private size: number;
  private readonly paths: string[];

  constructor(private readonly opts: AuditFileOptions) {
    if (!Number.isInteger(opts.files) || opts.files < 1) throw new RangeError(`audit log files must be a positive integer, got ${opts.files}`);
    this.paths = auditFilePaths(opts);
    ({ fd: this.fd, size: this.size } = this.open());
  }

  /** Appends one record; rotates first when the line would take the file past maxBytes. */
  append(record: AuditRecord): void {
    const line = Buffer.from(JSON.stringify(record) + '\n');
    if (this.size > 0 && this.size + line.length > this.opts.maxBytes) this.rotate();
    writeSync(this.fd, line);
    this.size += line.length;
  }

  query(filter: AuditFilter, limit: number): Promise<{ items: AuditRecord[]; truncated: boolean; skippedLines: number }> {
    return readAuditRecords(this.opts, filter, limit);
  }

  close(): void {
    closeSync(this.fd);
  }

  private open(): { fd: number; size: number } {
    const fd = openSync(this.paths[0]!, 'a', 0o600);
    // A file left by an older version (or a hand edit) may be wider: the audit is operators' business only.
    fchmodSync(fd, 0o600);
    return { fd, size: fstatSync(fd).size };
  }

  private rotate(): void {
    closeSync(this.fd);
    const oldest = this.paths[this.paths.length - 1]!;
    if (existsSync(oldest)) unlinkSync(oldest);
    for (let i = this.paths.length - 2; i >= 0; i--) {
      if (existsSync(this.paths[i]!)) renameSync(this.paths[i]!, this.paths[i + 1]!);
    }
    ({ fd: this.fd, size: this.size } = this.open());
  }
}

/**
 * The newest `limit` records matching `filter`, oldest first, read from the rotated files
 * (oldest first) and then the current one, line by line. Lines that are not audit records
 * (a torn last line after a crash) are skipped and counted.
 */
export async function readAuditRecords(opts: Pick<AuditFileOptions, 'dir' | 'files'>, filter: AuditFilter, limit: number):
Promise<{ items: AuditRecord[]; truncated: boolean; skippedLines: number }> {
  const newest = new NewestRecords(limit);
  let skippedLines = 0;
  for (const path of auditFilePaths(opts).reverse()) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      // Not there (yet), or rotated away between two files: what is left is still read.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const lines = createInterface({ input: createReadStream('', { fd, encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line) continue;
      const record = parseLine(line);
      if (!record) skippedLines++;
      else if (matchesAudit(record, filter)) newest.offer(record);
    }
  }
  return { ...newest.result(), skippedLines };
}

function parseLine(line: string): AuditRecord | undefined {
  try {
    const parsed = AuditRecordSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
