/**
 * The cached copy of one etcd key prefix that a registry keeps from a list and a watch, apart
 * from any I/O. It never trusts the watch's continuity (anchors §3.3: Debian's etcd 3.4.23 can
 * send duplicates, travel back in time on reconnect, lose events after compaction, miss a delete):
 * - an event is applied only if it is newer than what the view holds for that key, and never if
 *   it is older than the revision the view is complete up to (duplicates and time travel are no-ops);
 * - a fresh list replaces the view as a diff, so a re-list after any watch error, or a periodic
 *   resync, repairs whatever the watch lost, and reports exactly what changed.
 */

export interface ViewEntry {
  /** Key relative to the view's prefix (e.g. a node name). */
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  lease: string;
}

export type ViewChange =
  | { type: 'put'; key: string; entry: ViewEntry; previous: ViewEntry | undefined }
  | { type: 'delete'; key: string; previous: ViewEntry };

export class ViewState {
  private readonly entries = new Map<string, ViewEntry>();
  /** Every change up to this revision is in the view. */
  private completeAt = 0;

  get revision(): number {
    return this.completeAt;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): ViewEntry | undefined {
    return this.entries.get(key);
  }

  values(): IterableIterator<ViewEntry> {
    return this.entries.values();
  }

  /** A put seen on the watch; undefined when it changes nothing (a duplicate or a stale replay). */
  applyPut(entry: ViewEntry): ViewChange | undefined {
    if (entry.modRevision < this.completeAt) return undefined;
    const previous = this.entries.get(entry.key);
    if (previous && previous.modRevision >= entry.modRevision) return undefined;
    this.entries.set(entry.key, entry);
    this.completeAt = entry.modRevision;
    return { type: 'put', key: entry.key, entry, previous };
  }

  /** A delete seen on the watch at `revision`; undefined when the key is absent or newer already. */
  applyDelete(key: string, revision: number): ViewChange | undefined {
    if (revision < this.completeAt) return undefined;
    const previous = this.entries.get(key);
    if (!previous || previous.modRevision >= revision) return undefined;
    this.entries.delete(key);
    this.completeAt = revision;
    return { type: 'delete', key, previous };
  }

  /** Replaces the view with a list read at `revision`; returns the changes. An older list than the view changes nothing. */
  replace(listed: readonly ViewEntry[], revision: number): ViewChange[] {
    if (revision < this.completeAt) return [];
    const changes: ViewChange[] = [];
    const seen = new Set<string>();
    for (const entry of listed) {
      seen.add(entry.key);
      const previous = this.entries.get(entry.key);
      if (previous && previous.modRevision === entry.modRevision) continue;
      this.entries.set(entry.key, entry);
      changes.push({ type: 'put', key: entry.key, entry, previous });
    }
    for (const [key, previous] of this.entries) {
      if (seen.has(key)) continue;
      this.entries.delete(key);
      changes.push({ type: 'delete', key, previous });
    }
    this.completeAt = revision;
    return changes;
  }
}
