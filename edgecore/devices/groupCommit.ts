/**
 * Group commit for the device hub: the device messages that arrive in one event-loop turn run
 * in ONE SQLite transaction, so a burst of N reports costs one synced commit instead of N.
 * Each message's `done` (which lets aedes send the PUBACK) runs only after that commit, so an
 * acknowledged message is on disk; when the commit fails, every message of the batch gets the
 * error instead (aedes closes those connections and the publishers resend).
 */

/** Runs inside the batch's transaction; returns what to do once the batch is committed (publishes). */
export type BatchWork = () => (() => void) | undefined | void;

export type WorkDone = (err: Error | null) => void;

export interface GroupCommitOptions {
  /** Runs `fn` in one transaction: commits when it returns, rolls back and rethrows when it throws. */
  transaction: (fn: () => void) => void;
  /** Most pieces of work in one transaction; a full batch commits at once. */
  maxBatch: number;
  /** Runs inside every transaction after the batch's work: the writes the work deferred. */
  beforeCommit: () => void;
  /** A transaction was rolled back: whatever the work changed in memory must be put back. */
  onRollback: (err: Error) => void;
  /** A piece of work threw: the others of its batch still commit; its `done` gets the error. */
  onWorkError: (err: Error) => void;
}

interface Queued {
  work: BatchWork;
  done: WorkDone | undefined;
}

export const DEFAULT_MAX_BATCH = 1000;

/** What the group commit has done since it was made (edge metrics; items ÷ transactions = mean batch). */
export interface GroupCommitStats {
  /** Transactions committed. */
  transactions: number;
  /** Pieces of work those transactions carried (device messages, status changes, releases). */
  items: number;
  /** Transactions rolled back. */
  rollbacks: number;
}

export class GroupCommit {
  private queue: Queued[] = [];
  private scheduled: NodeJS.Immediate | null = null;
  private stopped: Error | null = null;
  private readonly counts: GroupCommitStats = { transactions: 0, items: 0, rollbacks: 0 };

  constructor(private readonly opts: GroupCommitOptions) {
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${opts.maxBatch}`);
  }

  /** Pieces of work waiting for the next commit. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Queues `work` for the batch committed at the end of this event-loop turn (setImmediate runs
   * after the I/O callbacks of the turn, so every message read in it joins), or at once when the
   * batch is full. `done` runs after the commit, with null or the error that rolled it back.
   */
  add(work: BatchWork, done?: WorkDone): void {
    if (this.stopped !== null) {
      done?.(this.stopped);
      return;
    }
    this.queue.push({ work, done });
    if (this.queue.length >= this.opts.maxBatch) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush());
  }

  stats(): GroupCommitStats {
    return { ...this.counts };
  }

  /** Commits what is queued, now. */
  flush(): void {
    if (this.scheduled !== null) {
      clearImmediate(this.scheduled);
      this.scheduled = null;
    }
    const batch = this.queue;
    if (batch.length === 0) return;
    // Work added while this batch runs (a done callback letting aedes read more) joins the next one.
    this.queue = [];
    const failures = new Map<Queued, Error>();
    const afterCommit: (() => void)[] = [];
    let rolledBack: Error | null = null;
    try {
      this.opts.transaction(() => {
        for (const item of batch) {
          try {
            const after = item.work();
            if (after) afterCommit.push(after);
          } catch (err) {
            failures.set(item, asError(err));
            this.opts.onWorkError(asError(err));
          }
        }
        this.opts.beforeCommit();
      });
    } catch (err) {
      rolledBack = asError(err);
      this.counts.rollbacks++;
      this.opts.onRollback(rolledBack);
    }
    if (rolledBack === null) {
      this.counts.transactions++;
      this.counts.items += batch.length - failures.size;
      for (const after of afterCommit) {
        try {
          after();
        } catch (err) {
          this.opts.onWorkError(asError(err));
        }
      }
    }
    for (const item of batch) item.done?.(rolledBack ?? failures.get(item) ?? null);
  }

  /**
   * Commits what is queued, then runs `work` in a transaction of its own and returns once that
   * is committed (for changes the caller must see done when the call returns). Throws, after
   * the rollback, if it could not be committed.
   */
  now(work: BatchWork): void {
    this.flush();
    let after: (() => void) | undefined | void;
    try {
      this.opts.transaction(() => {
        after = work();
        this.opts.beforeCommit();
      });
    } catch (err) {
      this.counts.rollbacks++;
      this.opts.onRollback(asError(err));
      throw err;
    }
    this.counts.transactions++;
    this.counts.items++;
    after?.();
  }

  /** Commits what is queued; work added later is not run, its `done` gets `reason`. */
  stop(reason: Error): void {
    this.flush();
    this.stopped = reason;
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
