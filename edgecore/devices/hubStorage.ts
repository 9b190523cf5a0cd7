import Database from 'better-sqlite3';
import type { Device } from '../../protocol/index.js';
import { DEFAULT_MAX_BATCH, GroupCommit } from './groupCommit.js';
import { RetryLater } from './retryLater.js';
import { SqlitePersistence } from './persistence/index.js';
import { openMqttDatabase, type Db } from './persistence/schema.js';
import type { DeviceUpstreamEntry } from './twinEngine.js';
import { TwinLedger } from './twinLedger.js';
import { TwinStore } from './twinStore.js';

/** Deferred twin reports are released at most this often (see scheduleRelease). */
const RELEASE_GRANULARITY_MS = 20;
/** Telemetry of a rolled-back transaction is tried again this much later (see onRollback). */
const TELEMETRY_RETRY_MS = 1_000;

export interface HubStorageOptions {
  /** A file path (opened here, WAL + synchronous=FULL, closed by close()) or an open database shared with its owner. */
  db: string | Db;
  reportRefreshMs: number;
  /** See TwinLedgerOptions.upstreamIntervalMs. */
  upstreamIntervalMs: number;
  maxBatch?: number;
  /** The upstream entries of one transaction, inside it (see DeviceHubOptions.upstream). */
  upstream: (entries: DeviceUpstreamEntry[]) => void;
  onUpstreamCommit?: (committed: boolean) => void;
  /** The devices on the node now (twinReported entries are built from them). */
  devices: () => ReadonlyMap<string, Device>;
  warn: (obj: object, msg: string) => void;
}

/**
 * The device hub's database and the only way it writes to it: the broker's persistence, the
 * twins, and one group commit through which every change goes. Each transaction ends by saving
 * the twins it changed and handing its upstream entries to the owner, in the same commit.
 */
export class HubStorage {
  readonly db: Db;
  readonly persistence: SqlitePersistence;
  readonly twins: TwinLedger;
  readonly commit: GroupCommit;
  private readonly ownsDb: boolean;
  /** Upstream entries of the running transaction, handed on at its end. */
  private readonly pendingUpstream: DeviceUpstreamEntry[] = [];
  private upstreamInTransaction = false;
  private inTransaction = false;
  /** The entries handed to `upstream` in the running transaction, until it commits. */
  private handedUpstream: DeviceUpstreamEntry[] = [];
  /** Starts a transaction for telemetry a rolled-back one left waiting (see onRollback). */
  private readonly telemetryRetry = new RetryLater(TELEMETRY_RETRY_MS, () => this.commit.add(() => undefined));
  /** The pending release of deferred twin reports, and when it fires. */
  private releaseTimer: NodeJS.Timeout | null = null;
  private releaseAt = 0;
  private closed = false;

  constructor(private readonly opts: HubStorageOptions) {
    this.ownsDb = typeof opts.db === 'string';
    this.db = typeof opts.db === 'string' ? openMqttDatabase(opts.db) : opts.db;
    try {
      this.persistence = new SqlitePersistence({
        db: this.db,
        onUnreadable: (row) => opts.warn({ table: row.table, key: row.key, reason: row.reason }, 'unreadable stored MQTT packet dropped'),
      });
      this.twins = new TwinLedger(new TwinStore(this.db), {
        reportRefreshMs: opts.reportRefreshMs,
        upstreamIntervalMs: opts.upstreamIntervalMs,
        scheduleRelease: (delayMs) => this.scheduleRelease(delayMs),
      });
      const inTransaction = this.db.transaction((fn: () => void) => fn());
      this.commit = new GroupCommit({
        transaction: (fn) => this.runTransaction(() => inTransaction.immediate(fn)),
        maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH,
        beforeCommit: () => this.writePending(),
        onRollback: (err) => this.onRollback(err),
        onWorkError: (err) => opts.warn({ err: String(err) }, 'handling a device message failed'),
      });
    } catch (err) {
      if (this.ownsDb) this.db.close();
      throw err;
    }
  }

  /**
   * Queues an entry for the upstream hand-over at the end of the running transaction, or of the
   * next one (started here) when none runs: a telemetry batch that fills up after a commit.
   */
  sendUpstream(entry: DeviceUpstreamEntry): void {
    this.pendingUpstream.push(entry);
    if (!this.inTransaction && !this.closed) this.commit.add(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.releaseTimer !== null) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    this.telemetryRetry.stop();
    await this.persistence.destroy();
    if (this.ownsDb) this.db.close();
  }

  /**
   * Deferred twin reports go upstream in a batch of their own once due. One timer serves all
   * devices; it never fires more often than every RELEASE_GRANULARITY_MS, so many devices with
   * staggered intervals cost a few releases per second, each sending all that are due.
   */
  private scheduleRelease(delayMs: number): void {
    if (this.closed) return;
    const at = Date.now() + Math.max(delayMs, RELEASE_GRANULARITY_MS);
    if (this.releaseTimer !== null && this.releaseAt <= at) return;
    if (this.releaseTimer !== null) clearTimeout(this.releaseTimer);
    this.releaseAt = at;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = null;
      this.commit.add(() => {
        const next = this.twins.releaseDeferred(this.opts.devices());
        if (next !== null) this.scheduleRelease(next);
      });
    }, at - Date.now());
  }

  /** Last step of every transaction: the twins it changed, then all its upstream entries in one call. */
  private writePending(): void {
    this.twins.writePending(this.opts.devices(), (entry) => this.sendUpstream(entry));
    if (this.pendingUpstream.length === 0) return;
    const entries = this.pendingUpstream.splice(0);
    this.handedUpstream = entries;
    this.upstreamInTransaction = true;
    try {
      this.opts.upstream(entries);
    } catch (err) {
      // The database failing (a full or broken disk) fails the whole transaction: nothing is
      // acked whose outbox entry is not on disk. Only an entry the outbox refuses as invalid is
      // dropped, and it must not cost the others: they are handed on one by one.
      if (err instanceof Database.SqliteError) throw err;
      for (const entry of entries) {
        try {
          this.opts.upstream([entry]);
        } catch (entryErr) {
          if (entryErr instanceof Database.SqliteError) throw entryErr;
          this.opts.warn({ kind: entry.kind, device: entry.key, err: String(entryErr) }, 'handing a device entry upstream failed');
        }
      }
    }
  }

  /** Tells the owner whether the upstream entries a transaction wrote were committed. */
  private runTransaction(run: () => void): void {
    this.upstreamInTransaction = false;
    this.handedUpstream = [];
    this.inTransaction = true;
    try {
      run();
    } catch (err) {
      if (this.upstreamInTransaction) this.opts.onUpstreamCommit?.(false);
      throw err;
    } finally {
      this.inTransaction = false;
    }
    if (this.upstreamInTransaction) this.opts.onUpstreamCommit?.(true);
  }

  /** A rolled-back transaction's changes to the twins in memory are undone by reading back what is committed. */
  private onRollback(err: Error): void {
    this.opts.warn({ err: String(err) }, 'committing device state failed; the publishers of its messages get no PUBACK and resend');
    // Telemetry was acked when it joined its batch, so a lost batch is queued again for the next
    // transaction (and one is started later if nothing else comes). Twin reports need no copy:
    // the ledger sends the committed twins again.
    const telemetry = [...this.handedUpstream, ...this.pendingUpstream].filter((entry) => entry.kind === 'telemetry');
    this.handedUpstream = [];
    this.pendingUpstream.length = 0;
    this.pendingUpstream.push(...telemetry);
    if (telemetry.length > 0) this.telemetryRetry.add('telemetry');
    this.twins.rollback(this.opts.devices().keys());
  }
}
