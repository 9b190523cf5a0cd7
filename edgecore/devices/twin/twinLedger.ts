import type { Device } from '../../../protocol/index.js';
import { emptyTwin, twinReportedEntry, type DeviceTwinState, type TwinReportedEntry } from './twinEngine.js';
import type { TwinStore } from './twinStore.js';

export interface TwinLedgerOptions {
  /** A report that changes nothing still goes upstream (lastSeen) once this long has passed. */
  reportRefreshMs: number;
  /**
   * A device's reported changes go upstream at most once per this many ms: the first change
   * after a quiet spell goes at once, later ones wait and go together (the cloud gets the
   * newest state). 0 sends every change with its own transaction.
   */
  upstreamIntervalMs?: number;
  /** Asks the owner to call releaseDeferred() in a transaction after about this many ms. */
  scheduleRelease?: (delayMs: number) => void;
  now?: () => number;
}

/**
 * The node's twins in memory, and what the running transaction owes the database and the
 * outbox for them. Changes made while a transaction runs are only noted; `writePending()`, its
 * last step, saves each changed twin once and emits one `twinReported` entry per device that
 * is due, however many reports of that device the batch held.
 *
 * Why reported changes may go upstream later than they are saved: the twin row is what a
 * PUBACK promises (it is written in the batch's transaction); the outbox entry only carries
 * that row to the cloud, and only the newest one matters. A chatty device (a mapper polling
 * every 100 ms) would otherwise cost an outbox write per report. A crash before a deferred
 * entry is written loses nothing: every twin goes upstream again at the first sync of a run.
 */
export class TwinLedger {
  private readonly twins: Map<string, DeviceTwinState>;
  private readonly unsaved = new Set<string>();
  private dueUpstream = new Set<string>();
  /** Devices whose entries the last writePending() emitted (see rollback()). */
  private emitted = new Set<string>();
  /** Generation last reported upstream per device (this run): a new one is reported at once. */
  private readonly reportedGeneration = new Map<string, number>();
  private readonly lastUpstreamAt = new Map<string, number>();
  /** Devices with a reported change not yet upstream because their interval has not passed. */
  private readonly deferred = new Set<string>();
  private readonly reportRefreshMs: number;
  private readonly upstreamIntervalMs: number;
  private readonly scheduleRelease: (delayMs: number) => void;
  private readonly now: () => number;

  /** Why an offline device cannot be reached, as its mapper last said (kept in memory by the hub, not in the row). */
  offlineReason: (device: string) => string | undefined = () => undefined;

  /** Loads the stored twins; `corrupt` lists rows that did not parse (those start empty). */
  constructor(private readonly store: TwinStore, opts: TwinLedgerOptions) {
    this.reportRefreshMs = opts.reportRefreshMs;
    this.upstreamIntervalMs = opts.upstreamIntervalMs ?? 0;
    if (!(this.upstreamIntervalMs >= 0)) throw new RangeError(`upstreamIntervalMs must be >= 0, got ${this.upstreamIntervalMs}`);
    this.scheduleRelease = opts.scheduleRelease ?? (() => {});
    this.now = opts.now ?? Date.now;
    const { twins, corrupt } = store.loadAll();
    this.twins = twins;
    this.corrupt = corrupt;
  }

  readonly corrupt: string[];

  get(name: string): DeviceTwinState | undefined {
    return this.twins.get(name);
  }

  has(name: string): boolean {
    return this.twins.has(name);
  }

  names(): string[] {
    return [...this.twins.keys()];
  }

  /** Replaces the twin; it is saved when the transaction ends. */
  put(name: string, twin: DeviceTwinState): void {
    this.twins.set(name, twin);
    this.unsaved.add(name);
  }

  /** An empty twin for a device seen for the first time. */
  ensure(name: string): void {
    if (!this.twins.has(name)) this.put(name, emptyTwin());
  }

  /** Whether the cloud has not yet had this device's state from this run at its current generation. */
  needsReport(device: Device): boolean {
    return this.reportedGeneration.get(device.metadata.name) !== (device.metadata.generation ?? 0);
  }

  /** Sends the reported section upstream when the transaction ends (once, however often it changed). */
  report(device: Device): void {
    const name = device.metadata.name;
    if (!this.twins.has(name)) return;
    this.deferred.delete(name);
    this.reportedGeneration.set(name, device.metadata.generation ?? 0);
    this.lastUpstreamAt.set(name, this.now());
    this.dueUpstream.add(name);
  }

  /**
   * The device reported a change: it goes upstream with this transaction, or, when the device
   * went upstream less than upstreamIntervalMs ago, with the release after the interval.
   */
  reportChange(device: Device): void {
    const name = device.metadata.name;
    if (!this.twins.has(name)) return;
    const wait = this.untilUpstream(name, this.now());
    if (wait <= 0) return this.report(device);
    if (this.deferred.has(name)) return;
    this.deferred.add(name);
    this.scheduleRelease(wait);
  }

  /**
   * In a transaction: sends the deferred changes whose interval has passed; returns the ms
   * until the next one is due, or null when none is left.
   */
  releaseDeferred(devices: ReadonlyMap<string, Device>): number | null {
    const now = this.now();
    let next: number | null = null;
    for (const name of this.deferred) {
      const device = devices.get(name);
      if (device === undefined) {
        this.deferred.delete(name);
        continue;
      }
      const wait = this.untilUpstream(name, now);
      if (wait <= 0) this.report(device);
      else if (next === null || wait < next) {
        next = wait;
      }
    }
    return next;
  }

  /** Ms until the device may go upstream again (≤ 0: now). */
  private untilUpstream(name: string, now: number): number {
    return (this.lastUpstreamAt.get(name) ?? -Infinity) + this.upstreamIntervalMs - now;
  }

  /** In a transaction: sends every deferred change now (the hub is closing). */
  releaseAll(devices: ReadonlyMap<string, Device>): void {
    for (const name of this.deferred) {
      const device = devices.get(name);
      if (device !== undefined) this.report(device);
    }
    this.deferred.clear();
  }

  /** Devices whose reported change waits for its interval. */
  get deferredCount(): number {
    return this.deferred.size;
  }

  /**
   * The device was heard from: lastSeen moves in memory; it is saved and goes upstream only
   * when nothing did for reportRefreshMs (mappers re-report unchanged values every cycle).
   */
  touch(device: Device, at: string): void {
    const name = device.metadata.name;
    const twin = this.twins.get(name);
    if (twin === undefined) return;
    this.twins.set(name, { ...twin, lastSeen: at });
    if (this.now() - (this.lastUpstreamAt.get(name) ?? 0) < this.reportRefreshMs) return;
    this.unsaved.add(name);
    this.report(device);
  }

  /** The device left the node: its twin is deleted in the running transaction. */
  remove(name: string): void {
    this.twins.delete(name);
    this.unsaved.delete(name);
    this.dueUpstream.delete(name);
    this.deferred.delete(name);
    this.reportedGeneration.delete(name);
    this.lastUpstreamAt.delete(name);
    this.store.delete(name);
  }

  /** Last step of a transaction: saves the changed twins and emits the due upstream entries. */
  writePending(devices: ReadonlyMap<string, Device>, emit: (entry: TwinReportedEntry) => void): void {
    const rows: [string, DeviceTwinState][] = [];
    for (const name of this.unsaved) {
      const twin = this.twins.get(name);
      if (twin !== undefined) rows.push([name, twin]);
    }
    this.store.saveMany(rows);
    this.unsaved.clear();
    for (const name of this.dueUpstream) {
      const device = devices.get(name);
      const twin = this.twins.get(name);
      if (device !== undefined && twin !== undefined) emit(twinReportedEntry(device, twin, this.offlineReason(name)));
    }
    // Kept until the next transaction's end: a failed COMMIT loses these entries (rollback()).
    [this.emitted, this.dueUpstream] = [this.dueUpstream, this.emitted];
    this.dueUpstream.clear();
  }

  /**
   * The transaction was rolled back: the twins go back to what is committed (devices without a
   * stored row start empty again) and nothing is owed any more.
   */
  rollback(devices: Iterable<string>): void {
    this.unsaved.clear();
    // What the lost transaction sent upstream may have been changes committed earlier and held
    // back by the interval: they go again, in the next release. (Re-sending entries of the last
    // committed transaction instead, when the failure came before its end, costs a duplicate.)
    for (const name of [...this.dueUpstream, ...this.emitted]) {
      if (!this.twins.has(name)) continue;
      this.deferred.add(name);
      this.lastUpstreamAt.delete(name);
    }
    this.dueUpstream.clear();
    this.emitted.clear();
    if (this.deferred.size > 0) this.scheduleRelease(0);
    // Reports of the lost transaction may have been the ones for a new generation: send again.
    this.reportedGeneration.clear();
    this.twins.clear();
    for (const [name, twin] of this.store.loadAll().twins) this.twins.set(name, twin);
    for (const name of devices) if (!this.twins.has(name)) this.twins.set(name, emptyTwin());
  }
}
