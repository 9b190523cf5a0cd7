import type { AnyObject, Change, Device, NodeRoute, Workload } from '../../protocol/index.js';
import type { WatchEvent } from '../store/store.js';

/**
 * Pure pieces of the downstream sync contract (ARCHITECTURE.md, "Sync contract"):
 * deciding between resume and snapshot, and coalescing changes per object while the edge
 * has not yet acked the frame in flight.
 */

export interface ResumeInput {
  /** Epoch the cloud last saw for this node (null: never connected). */
  knownEpoch: string | null;
  helloEpoch: string;
  helloRevision: number;
  compactedRevision: number;
  currentRevision: number;
}

export type ResumeDecision =
  | { mode: 'resume'; fromRevision: number }
  | { mode: 'snapshot'; reason: string };

export function decideResume(input: ResumeInput): ResumeDecision {
  if (input.knownEpoch === null) return { mode: 'snapshot', reason: 'first connection of this node' };
  if (input.knownEpoch !== input.helloEpoch) {
    return { mode: 'snapshot', reason: `edge database epoch changed (${input.knownEpoch} → ${input.helloEpoch}): edge state was lost or replaced` };
  }
  if (input.helloRevision < input.compactedRevision) {
    return { mode: 'snapshot', reason: `edge revision ${input.helloRevision} is older than the oldest replayable revision ${input.compactedRevision}` };
  }
  if (input.helloRevision > input.currentRevision) {
    // The cloud store is behind the edge (restored from an older backup): replay is meaningless.
    return { mode: 'snapshot', reason: `edge revision ${input.helloRevision} is ahead of the store (${input.currentRevision})` };
  }
  return { mode: 'resume', fromRevision: input.helloRevision };
}

/**
 * True when a change is only the edge's own status coming back: the status says the edge
 * already holds this version of the object (`observedGeneration` = the object's generation,
 * which the store bumps on every spec change), so there is nothing to send. Without this,
 * every status report would bounce back down the link as a sync frame.
 */
export function isEchoOfEdgeStatus(event: WatchEvent): boolean {
  if (event.type !== 'MODIFIED' || (event.object.kind !== 'Workload' && event.object.kind !== 'Device')) return false;
  const observed = event.object.status?.observedGeneration;
  return observed !== undefined && observed === event.object.metadata.generation;
}

/**
 * Changes waiting to go to one node. Only the newest version of each object matters, so a
 * later change to the same workload replaces an earlier one that has not been sent yet.
 */
export class PendingChanges {
  private readonly byName = new Map<string, Change>();
  private maxRevision = 0;

  add(event: WatchEvent): void {
    const obj = event.object;
    if (!isSynced(obj)) return;
    const key = `${obj.kind}/${obj.metadata.name}`;
    // Delete and re-insert so iteration order follows the newest change.
    this.byName.delete(key);
    this.byName.set(key, event.type === 'DELETED'
      ? { op: 'delete', kind: obj.kind, name: obj.metadata.name }
      : { op: 'put', object: obj });
    this.maxRevision = Math.max(this.maxRevision, event.revision);
  }

  /** Records that the store moved to `revision` with nothing for this node (keeps the cursor fresh). */
  advance(revision: number): void {
    this.maxRevision = Math.max(this.maxRevision, revision);
  }

  get size(): number { return this.byName.size; }
  get revision(): number { return this.maxRevision; }

  /** Hands out everything pending, in change order, and empties the queue. */
  take(): { changes: Change[]; revision: number } {
    const changes = [...this.byName.values()];
    this.byName.clear();
    return { changes, revision: this.maxRevision };
  }
}

/** The kinds an edge holds: its workloads, its devices and its routes. */
export function isSynced(obj: AnyObject): obj is Workload | Device | NodeRoute {
  return obj.kind === 'Workload' || obj.kind === 'Device' || obj.kind === 'NodeRoute';
}
