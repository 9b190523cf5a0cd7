import { randomBytes } from 'node:crypto';
import type { LinkState } from '../../edgecore/link/cloudLink.js';
import type { UpstreamBody, UpstreamKind } from '../../edgecore/meta/metaStore.js';
import type { SyncFrame, UpstreamEntry, Workload } from '../../protocol/index.js';

/**
 * What a simulated edge needs from its local state: the link's half (`LinkState`) plus the
 * desired set and the outbox. edgecore's `MetaStore` (SQLite) has exactly these methods; the
 * tests use it. `MemoryEdgeState` is the light stand-in for the 10,000-node benchmark, where
 * 10,000 SQLite files fsyncing every commit would measure the benchmark's disk, not cloudcore.
 */
export interface SimEdgeState extends LinkState {
  desiredWorkloads(): Workload[];
  desiredWorkload(app: string): Workload | undefined;
  enqueue<K extends UpstreamKind>(kind: K, key: string, body: UpstreamBody<K>): number;
  close(): void;
}

/** Same contract as MetaStore for workloads: snapshot replaces, delta applies, statuses coalesce per key. */
export class MemoryEdgeState implements SimEdgeState {
  private readonly desired = new Map<string, Workload>();
  private revision = 0;
  private seq = 0;
  private readonly epochId = randomBytes(8).toString('hex');
  private readonly outbox = new Map<string, UpstreamEntry>();

  constructor(readonly node: string) {}

  epoch(): string { return this.epochId; }

  lastRevision(): number { return this.revision; }

  applySync(frame: SyncFrame): { changed: string[]; removed: string[] } {
    if (frame.revision < this.revision) throw new Error(`sync frame revision ${frame.revision} is older than ${this.revision}`);
    const before = new Map([...this.desired].map(([app, w]) => [app, JSON.stringify(w)]));
    const next = frame.mode === 'snapshot' ? new Map<string, Workload>() : new Map(this.desired);
    for (const change of frame.changes) {
      if (change.op === 'delete') {
        for (const [app, w] of next) if (w.metadata.name === change.name) next.delete(app);
        continue;
      }
      const object = change.object;
      if (object.kind !== 'Workload') continue;
      if (object.spec.nodeName !== this.node) throw new Error(`workload ${object.metadata.name} is bound to ${object.spec.nodeName}, not ${this.node}`);
      next.set(object.spec.app, object);
    }
    this.desired.clear();
    for (const [app, w] of next) this.desired.set(app, w);
    this.revision = frame.revision;
    const changed = [...next].filter(([app, w]) => before.get(app) !== JSON.stringify(w)).map(([app]) => app);
    const removed = [...before.keys()].filter((app) => !next.has(app));
    return { changed, removed };
  }

  desiredWorkloads(): Workload[] {
    return [...this.desired.values()].sort((a, b) => a.spec.app.localeCompare(b.spec.app));
  }

  desiredWorkload(app: string): Workload | undefined { return this.desired.get(app); }

  enqueue<K extends UpstreamKind>(kind: K, key: string, body: UpstreamBody<K>): number {
    const seq = ++this.seq;
    const slot = kind === 'workloadStatus' || kind === 'twinReported' ? `${kind}:${key}` : `#${seq}`;
    this.outbox.delete(slot); // a coalesced entry goes to the back with its new seq, as in MetaStore
    this.outbox.set(slot, { seq, kind, key, body } as UpstreamEntry);
    return seq;
  }

  pending(limit: number): UpstreamEntry[] {
    const out: UpstreamEntry[] = [];
    for (const entry of this.outbox.values()) {
      if (out.length >= limit) break;
      out.push(entry);
    }
    return out;
  }

  ackUpTo(seq: number): number {
    let n = 0;
    for (const [slot, entry] of this.outbox) {
      if (entry.seq > seq) continue;
      this.outbox.delete(slot);
      n++;
    }
    return n;
  }

  close(): void {
    this.desired.clear();
    this.outbox.clear();
  }
}
