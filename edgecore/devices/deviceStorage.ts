import Database from 'better-sqlite3';
import { WarnLimiter } from './broker/loginGate.js';
import type { Device, TelemetrySample } from '../../protocol/index.js';
import { DEFAULT_MAX_BATCH, GroupCommit } from './groupCommit.js';
import { RetryLater } from './retryLater.js';
import { SqlitePersistence, type PersistedPacket } from './persistence/index.js';
import { openMqttDatabase, type Db } from './persistence/schema.js';
import type { DeviceUpstreamEntry } from './twin/twinEngine.js';
import { TelemetryJournal, type JournalItems } from './telemetry/telemetryJournal.js';
import { TwinLedger } from './twin/twinLedger.js';
import { TwinStore } from './twin/twinStore.js';

/** Deferred twin reports are released at most this often (see scheduleRelease). */
const RELEASE_GRANULARITY_MS = 20;
/** Telemetry of a rolled-back transaction is tried again this much later (see onRollback). */
const TELEMETRY_RETRY_MS = 1_000;

export interface DeviceStorageOptions {
  /** A file path (opened here, WAL + synchronous=FULL, closed by close()) or an open database shared with its owner. */
  db: string | Db;
  reportRefreshMs: number;
  /** See SqlitePersistenceOptions.neverQueue. */
  neverQueue?: (packet: PersistedPacket) => boolean;
  /** See SqlitePersistenceOptions.maxQueuedPerClient. */
  maxQueuedPerSession?: number;
  /** See TwinLedgerOptions.upstreamIntervalMs. */
  upstreamIntervalMs: number;
  maxBatch?: number;
  /** The upstream entries of one transaction, inside it (see DeviceHubOptions.upstream). */
  upstream: (entries: DeviceUpstreamEntry[]) => void;
  onUpstreamCommit?: (committed: boolean) => void;
  /** The devices on the node now (twinReported entries are built from them). */
  devices: () => ReadonlyMap<string, Device>;
  /** Most samples in one telemetry entry (the batcher's); a crash's leftovers are sent in entries this big. */
  telemetryMaxSamples: number;
  /** Journal seq of the oldest telemetry sample acked but not yet handed upstream (the batcher's), if any. */
  oldestUnsentTelemetry: () => number | undefined;
  warn: (obj: object, msg: string) => void;
}

/**
 * The device hub's database and the only way it writes to it: the broker's persistence, the
 * twins, and one group commit through which every change goes. Each transaction ends by saving
 * the twins it changed and handing its upstream entries to the owner, in the same commit.
 */
export class DeviceStorage {
  readonly db: Db;
  readonly persistence: SqlitePersistence;
  readonly twins: TwinLedger;
  readonly commit: GroupCommit;
  private readonly journal: TelemetryJournal;
  /** The running transaction's telemetry: one journal row, written just before it commits. */
  private txJournal: { seq: number; items: JournalItems } | null = null;
  /** Journal rows up to this seq are a crash's leftovers not yet sent upstream (see recoverTelemetry). */
  private leftoverUpTo = 0;
  private readonly ownsDb: boolean;
  /** Upstream entries of the running transaction, handed on at its end. */
  private readonly pendingUpstream: DeviceUpstreamEntry[] = [];
  private upstreamInTransaction = false;
  private inTransaction = false;
  /** The entries handed to `upstream` in the running transaction, until it commits. */
  private handedUpstream: DeviceUpstreamEntry[] = [];
  /** Starts a transaction for telemetry a rolled-back one left waiting (see onRollback). */
  private readonly telemetryRetry = new RetryLater(TELEMETRY_RETRY_MS, () => this.commit.add(() => undefined));
  /** Sends a crash's leftover telemetry again while its transaction cannot commit (see recoverTelemetry). */
  private readonly recoveryRetry = new RetryLater(TELEMETRY_RETRY_MS, () => this.recoverTelemetry());
  /** The pending release of deferred twin reports, and when it fires. */
  private releaseTimer: NodeJS.Timeout | null = null;
  private releaseAt = 0;
  private closed = false;
  /** One warning per session per minute when its queue drops messages. */
  private readonly dropWarnings = new WarnLimiter(60_000);

  constructor(private readonly opts: DeviceStorageOptions) {
    this.ownsDb = typeof opts.db === 'string';
    this.db = typeof opts.db === 'string' ? openMqttDatabase(opts.db) : opts.db;
    try {
      this.persistence = new SqlitePersistence({
        db: this.db,
        onUnreadable: (row) => opts.warn({ table: row.table, key: row.key, reason: row.reason }, 'unreadable stored MQTT packet dropped'),
        ...(opts.neverQueue ? { neverQueue: opts.neverQueue } : {}),
        ...(opts.maxQueuedPerSession !== undefined ? { maxQueuedPerClient: opts.maxQueuedPerSession } : {}),
        onQueueDrop: (clientId, dropped) => {
          const unlogged = this.dropWarnings.shouldLog(clientId);
          if (unlogged !== null) opts.warn({ clientId, dropped, ...(unlogged > 0 ? { timesUnlogged: unlogged } : {}) }, 'queued MQTT messages dropped: the persistent session is over its queue limit (oldest first)');
        },
      });
      this.journal = new TelemetryJournal(this.db);
      this.leftoverUpTo = this.journal.leftoverUpTo;
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

  /**
   * Journals a telemetry message's samples in the running transaction (its commit precedes the
   * PUBACK, so acked samples are on disk) and returns the journal seq they carry to the batcher.
   */
  journalTelemetry(device: string, samples: TelemetrySample[]): number {
    if (!this.inTransaction) throw new Error('telemetry is journaled inside a device hub transaction');
    this.txJournal ??= { seq: this.journal.nextSeq(), items: [] };
    this.txJournal.items.push([device, samples]);
    return this.txJournal.seq;
  }

  /**
   * Sends upstream the telemetry a crash left acked but out of the outbox, in entries of at
   * most `telemetryMaxSamples`, and deletes those journal rows, in one transaction. Call before
   * the broker takes messages. Tried again every second while it cannot commit.
   */
  recoverTelemetry(): void {
    const maxSamples = this.opts.telemetryMaxSamples;
    if (this.leftoverUpTo === 0 || this.closed) return;
    const upTo = this.leftoverUpTo;
    try {
      this.commit.now(() => {
        const found = this.journal.read(upTo);
        for (const row of found.unreadable) this.opts.warn({ seq: row.seq, err: row.error }, 'unreadable telemetry journal row dropped');
        const entries: DeviceUpstreamEntry[] = [];
        for (const [device, samples] of found.byDevice) {
          for (let i = 0; i < samples.length; i += maxSamples) {
            entries.push({ kind: 'telemetry', key: device, body: { device, samples: samples.slice(i, i + maxSamples) } });
          }
        }
        // Straight to the owner, not through pendingUpstream: a rollback must not leave these
        // queued as well as in the journal, or the retry would send them twice.
        if (entries.length > 0) {
          this.opts.upstream(entries);
          this.upstreamInTransaction = true;
        }
        this.journal.deleteBetween(0, upTo + 1);
        return () => {
          this.leftoverUpTo = 0;
          this.opts.warn({ samples: entries.reduce((n, e) => n + (e.kind === 'telemetry' ? e.body.samples.length : 0), 0) },
            'telemetry acked before an unclean stop sent upstream now');
        };
      });
    } catch (err) {
      this.opts.warn({ err: String(err), retryInMs: TELEMETRY_RETRY_MS }, 'sending the telemetry left by an unclean stop failed; trying again');
      this.recoveryRetry.add('recovery');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.releaseTimer !== null) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    this.telemetryRetry.stop();
    this.recoveryRetry.stop();
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
    if (this.txJournal !== null) this.journal.append(this.txJournal.seq, this.txJournal.items);
    if (this.pendingUpstream.length === 0) return;
    const entries = this.pendingUpstream.splice(0);
    if (entries.some((entry) => entry.kind === 'telemetry')) this.dropSentJournalRows();
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

  /**
   * In the transaction that writes telemetry to the outbox: journal rows older than every sample
   * still waiting (in a batch, or in this transaction's own row) hold nothing unsent any more.
   */
  private dropSentJournalRows(): void {
    const waiting = [this.txJournal?.seq, this.opts.oldestUnsentTelemetry()].filter((seq): seq is number => seq !== undefined);
    this.journal.deleteBetween(this.leftoverUpTo, waiting.length > 0 ? Math.min(...waiting) : Number.MAX_SAFE_INTEGER);
  }

  /** Tells the owner whether the upstream entries a transaction wrote were committed. */
  private runTransaction(run: () => void): void {
    this.upstreamInTransaction = false;
    this.handedUpstream = [];
    this.txJournal = null;
    this.inTransaction = true;
    try {
      run();
    } catch (err) {
      if (this.upstreamInTransaction) this.opts.onUpstreamCommit?.(false);
      throw err;
    } finally {
      this.inTransaction = false;
      this.txJournal = null;
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
