import type { IWatchResponse, WatchClient } from 'etcd3';
import { GoneError } from '../store.js';
import { isCompactedError, isFutureRevisionError } from './etcdErrors.js';
import { rangeOne, type EtcdContext } from './etcdContext.js';

/**
 * What EdgeFleet knows of etcd's compaction. etcd keeps ONE history for the whole cluster:
 * compacting to R drops every key's changes up to R, whatever its prefix. EdgeFleet records the
 * revision it compacts to under `<p>meta/compacted` BEFORE it asks etcd to compact (a crash in
 * between leaves the record ahead of etcd: a watch gets 410 a little early, never a gap), and
 * learns compactions done by others (etcd's own --auto-compaction, another prefix's store) from
 * etcd itself when a watch start or a live watch runs into one.
 *
 * SQLite keeps a second, separate window for Event objects (maxEventObjectChanges) so chatty edge
 * events never push desired state out of the log. One etcd history cannot be split by kind: the
 * etcd store has only `maxEvents`, counted in revisions of the whole cluster.
 */
export class EtcdCompaction {
  /** Highest compact revision learned from etcd itself (a watch cancel, a compacted read). */
  private learned = 0;

  constructor(private readonly ctx: EtcdContext, private readonly watchClient: WatchClient, readonly maxEvents: number) {}

  /** A read in flight, which concurrent callers join (every edge reconnecting at once opens a watch each). */
  private reading: Promise<CompactionRecord> | undefined;

  /**
   * The recorded compact revision and the cluster's current revision, in one read. Concurrent
   * callers share one read: a compaction recorded while it is in flight is caught by etcd's
   * cancel of the watch instead (onError GoneError), never missed.
   */
  read(): Promise<CompactionRecord> {
    this.reading ??= this.readOnce().finally(() => { this.reading = undefined; });
    return this.reading;
  }

  private async readOnce(): Promise<CompactionRecord> {
    const { kv, revision } = await rangeOne(this.ctx, this.ctx.keys.compacted());
    const recorded = kv ? Number(kv.value.toString('utf8')) : 0;
    return { recorded: Number.isSafeInteger(recorded) ? recorded : 0, modRevision: kv?.mod_revision ?? '0', current: revision };
  }

  async compactedRevision(): Promise<number> {
    return Math.max((await this.read()).recorded, this.learned);
  }

  /**
   * Throws GoneError if a watch from `fromRevision` is behind the compaction EdgeFleet recorded
   * (or learned). One shared read serves every concurrent caller, so ten thousand sessions
   * resuming at once cost one read, not ten thousand. A compaction nobody recorded is found when
   * etcd cancels the watch (see `goneAfter`), and reported through onError right away.
   */
  async assertWatchable(fromRevision: number): Promise<void> {
    const known = Math.max((await this.read()).recorded, this.learned);
    if (fromRevision < known) throw goneError(fromRevision, known);
  }

  /** `assertWatchable`, and also against etcd's own history: a compaction EdgeFleet did not record. */
  private async assertReplayable(fromRevision: number): Promise<void> {
    const { recorded, current } = await this.readOnce();
    const known = Math.max(recorded, this.learned);
    if (fromRevision < known) throw goneError(fromRevision, known);
    if (fromRevision + 1 > current) return;
    // A compaction EdgeFleet did not record (etcd's own, or another store's on this cluster):
    // a read at the watch's first revision fails exactly when the watch would be cancelled.
    try {
      await this.ctx.calls.within((options) => this.ctx.kv.range({ key: Buffer.from(this.ctx.keys.compacted()), revision: fromRevision + 1, count_only: true }, options));
    } catch (error) {
      if (isFutureRevisionError(error)) return;
      if (!isCompactedError(error)) throw this.ctx.calls.storeError(error);
      throw goneError(fromRevision, await this.learnFromEtcd());
    }
  }

  /** Whether changes after `revision` are gone (a watch etcd cancelled); the error to report if so. */
  async goneAfter(revision: number): Promise<GoneError | undefined> {
    try {
      await this.assertReplayable(revision);
      return undefined;
    } catch (error) {
      if (error instanceof GoneError) return error;
      throw error;
    }
  }

  /**
   * Compacts etcd to `revision() - maxEvents` when that is above the recorded revision (the
   * leader calls this periodically). Returns the compacted revision.
   */
  async compact(): Promise<number> {
    const { recorded, modRevision, current } = await this.read();
    const target = current - this.maxEvents;
    // The record itself is a write: when it is the newest, nothing happened since the last compaction.
    if (target <= recorded || Number(modRevision) === current) return recorded;
    const key = Buffer.from(this.ctx.keys.compacted());
    // Record first; a replica that recorded concurrently wins and this one compacts to its own target anyway.
    await this.ctx.calls.run((options) => this.ctx.kv.txn({
      compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: modRevision }],
      success: [{ request_put: { key, value: Buffer.from(String(target)) } }],
      failure: [],
    }, options));
    try {
      await this.ctx.calls.within((options) => this.ctx.kv.compact({ revision: target }, options));
    } catch (error) {
      // Compacted further already (etcd's own policy, another replica): nothing left to do.
      if (!isCompactedError(error)) throw this.ctx.calls.storeError(error);
    }
    this.learned = Math.max(this.learned, target);
    return target;
  }

  /**
   * etcd's real compact revision: a watch from revision 1 is cancelled with it. Used only once a
   * compaction is known to have happened (else the probe would just stay open until its timeout).
   */
  async learnFromEtcd(): Promise<number> {
    const revision = await this.probeCompactRevision().catch(() => 0);
    this.learned = Math.max(this.learned, revision);
    return this.learned;
  }

  private async probeCompactRevision(): Promise<number> {
    const stream = await this.ctx.calls.within((options) => this.watchClient.watch(options));
    try {
      return await new Promise<number>((resolve) => {
        const timer = setTimeout(() => resolve(0), this.ctx.calls.timeoutMs);
        const done = (revision: number) => { clearTimeout(timer); resolve(revision); };
        stream.on('data', (res: IWatchResponse) => { if (res.canceled) done(Number(res.compact_revision)); });
        stream.on('error', () => done(0));
        stream.on('end', () => done(0));
        stream.write({ create_request: { key: Buffer.from(this.ctx.keys.compacted()), start_revision: 1 } });
      });
    } finally {
      stream.cancel();
    }
  }
}

interface CompactionRecord { recorded: number; modRevision: string; current: number }

function goneError(fromRevision: number, compacted: number): GoneError {
  return new GoneError(`revision ${fromRevision} has been compacted; the oldest revision a watch can resume from is ${compacted}; list again`);
}
