import { randomBytes } from 'node:crypto';
import type { LinkState } from '../../edgecore/link/cloudLink.js';
import type { SyncFrame, UpstreamEntry, Workload } from '../../protocol/index.js';

/**
 * The edge's durable link state held in memory, so thousands of simulated edges fit in one
 * process. Same contract as edgecore's SQLite state: a snapshot replaces the desired set, a
 * delta applies on top, `lastRevision` follows the frame. The outbox stays empty (nothing runs
 * the workloads, so there is no status to report).
 *
 * It also checks the node-authorization half of the sync contract: a workload bound to another
 * node must never arrive here; such objects are counted, not stored.
 */
export class MemoryLinkState implements LinkState {
  readonly desired = new Map<string, Workload>();
  private revision = 0;
  private readonly epochId = randomBytes(8).toString('hex');
  /** Workloads received whose spec.nodeName is not this node (a cloud-side leak). */
  foreignObjects = 0;

  constructor(readonly node: string) {}

  epoch(): string { return this.epochId; }

  lastRevision(): number { return this.revision; }

  applySync(frame: SyncFrame): { changed: string[]; removed: string[] } {
    const changed: string[] = [];
    const removed: string[] = [];
    if (frame.mode === 'snapshot') {
      const incoming = new Set(frame.changes.flatMap((c) => (c.op === 'put' ? [c.object.metadata.name] : [])));
      for (const name of this.desired.keys()) {
        if (!incoming.has(name)) {
          this.desired.delete(name);
          removed.push(name);
        }
      }
    }
    for (const change of frame.changes) {
      if (change.op === 'delete') {
        if (this.desired.delete(change.name)) removed.push(change.name);
        continue;
      }
      const object = change.object;
      if (object.kind !== 'Workload') continue; // the fan-out benchmark syncs workloads only
      if (object.spec.nodeName !== this.node) {
        this.foreignObjects++;
        continue;
      }
      this.desired.set(object.metadata.name, object);
      changed.push(object.metadata.name);
    }
    this.revision = frame.revision;
    return { changed, removed };
  }

  pending(_limit: number): UpstreamEntry[] { return []; }

  ackUpTo(_seq: number): number { return 0; }
}
