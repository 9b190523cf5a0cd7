import type { UnreadableRow } from './desired.js';

export interface UnreadableRepairOptions {
  /** Forgets the sync cursor, so the next link asks for the whole desired state. */
  resetSyncCursor(): void;
  /** Drops the link (if any) so it connects again with the reset cursor. */
  reconnect(): void;
  log: { error(obj: object, msg: string): void };
}

/**
 * Stored desired objects this edgecore cannot read (after an upgrade, or a hand edit) are
 * replaced by the cloud's copies: the sync cursor is reset, once per run, and the link
 * reconnects to replay the desired state from the start. Workloads and devices are read at
 * different times (reconcile, device sync), so each reports its own kind.
 */
export class UnreadableRepair {
  /** A full resync was asked for this run because stored desired objects did not parse. */
  private resyncRequested = false;
  /** The kinds of desired object with unreadable rows at their last read. */
  private readonly unreadableKinds = new Set<UnreadableRow['kind']>();

  constructor(private readonly opts: UnreadableRepairOptions) {}

  report(kind: UnreadableRow['kind'], rows: UnreadableRow[]): void {
    if (rows.length === 0) {
      this.unreadableKinds.delete(kind);
      if (this.unreadableKinds.size === 0) this.resyncRequested = false;
      return;
    }
    this.unreadableKinds.add(kind);
    if (this.resyncRequested) return;
    this.resyncRequested = true;
    this.opts.log.error({ rows }, 'stored desired objects cannot be read; asking the cloud for the whole desired state again');
    this.opts.resetSyncCursor();
    this.opts.reconnect();
  }
}
