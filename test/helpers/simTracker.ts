import { WorkloadSchema, type Workload } from '../../protocol/index.js';

/**
 * Pure bookkeeping over the Workload watch of one app: what every node was ever ASSIGNED
 * (spec.generation), what it reports running (status), and the invariant of a rollout toward
 * a target revision: at no store revision may more nodes be "updating" than maxUnavailable.
 *
 * "Updating" here is a lower bound of the controller's own count: assigned the target, not
 * reporting the target Running (ready not false), not reporting it failed (CrashLoop/Failed),
 * and not a node the test took offline. The controller also counts nodes that run but have
 * not yet been ready for minReadySeconds, so its count is never below ours: if ours exceeds
 * maxUnavailable, the controller assigned too many.
 */

export interface NodeView {
  assigned: number;
  reported?: { revision: number; state: string; ready: boolean | null | undefined };
}

export interface InvariantCheck {
  /** The revision being rolled out. */
  revision: number;
  maxUnavailable: number;
  /** Nodes whose link the test cut: the controller counts them offline, not updating. */
  excluded?: ReadonlySet<string>;
}

export class WorkloadTracker {
  /** node → every revision ever assigned, in the order seen. */
  readonly assignedHistory = new Map<string, number[]>();
  readonly nodes = new Map<string, NodeView>();
  /** Every time the invariant did not hold: the store revision and the count. */
  readonly violations: string[] = [];
  /** Highest "updating" count seen per checked revision. */
  readonly maxUpdatingSeen = new Map<number, number>();
  /**
   * Every change of a node's assigned revision, in store order, with how many nodes reported
   * that revision Running (ready not false) and failed at that very store revision: what the
   * controller had seen when it made the assignment.
   */
  readonly assignments: { node: string; revision: number; runningThen: number; failedThen: number; storeRevision: number }[] = [];
  events = 0;
  badObjects = 0;
  private check: InvariantCheck | undefined;

  constructor(readonly app: string) {}

  /** Starts (or replaces) the maxUnavailable check; undefined stops checking. */
  checkInvariant(check: InvariantCheck | undefined): void {
    this.check = check;
    if (check) this.evaluate('check started');
  }

  /** Feeds one watch event ({type, object}). */
  apply(type: string, raw: unknown): void {
    const parsed = WorkloadSchema.safeParse(raw);
    if (!parsed.success) { this.badObjects++; return; }
    const w: Workload = parsed.data;
    if (w.spec.app !== this.app) return;
    this.events++;
    const node = w.spec.nodeName;
    if (type === 'DELETED') {
      this.nodes.delete(node);
    } else {
      const history = this.assignedHistory.get(node) ?? [];
      if (history[history.length - 1] !== w.spec.generation) {
        history.push(w.spec.generation);
        this.assignments.push({
          node, revision: w.spec.generation, storeRevision: w.metadata.resourceVersion ?? 0,
          runningThen: this.reporting(w.spec.generation).length,
          failedThen: this.failedOn(w.spec.generation).length,
        });
      }
      this.assignedHistory.set(node, history);
      this.nodes.set(node, {
        assigned: w.spec.generation,
        ...(w.status ? { reported: { revision: w.status.generation, state: w.status.state, ready: w.status.ready } } : {}),
      });
    }
    this.evaluate(`store revision ${w.metadata.resourceVersion ?? '?'} (${type} ${w.metadata.name})`);
  }

  private evaluate(at: string): void {
    const check = this.check;
    if (!check) return;
    const updating = countUpdating(this.nodes, check.revision, check.excluded);
    if (updating > (this.maxUpdatingSeen.get(check.revision) ?? -1)) this.maxUpdatingSeen.set(check.revision, updating);
    if (updating > check.maxUnavailable && this.violations.length < 50) {
      this.violations.push(`${at}: ${updating} nodes updating to revision ${check.revision} > maxUnavailable ${check.maxUnavailable}`);
    }
  }

  /** Nodes that were at some point assigned `revision`. */
  everAssigned(revision: number): string[] {
    return [...this.assignedHistory].filter(([, h]) => h.includes(revision)).map(([n]) => n);
  }

  /** Nodes currently assigned `revision`. */
  assignedNow(revision: number): string[] {
    return [...this.nodes].filter(([, v]) => v.assigned === revision).map(([n]) => n);
  }

  /** Nodes whose status reports `revision` CrashLoop or Failed. */
  failedOn(revision: number): string[] {
    return [...this.nodes].filter(([, v]) => v.reported?.revision === revision && isFailedState(v.reported.state)).map(([n]) => n);
  }

  /** Nodes whose status reports `revision` in `state` (Running: ready not false). */
  reporting(revision: number, state = 'Running'): string[] {
    return [...this.nodes].filter(([, v]) => v.reported?.revision === revision && v.reported.state === state
      && (state !== 'Running' || v.reported.ready !== false)).map(([n]) => n);
  }
}

export function isFailedState(state: string): boolean {
  return state === 'CrashLoop' || state === 'Failed';
}

/** Pure: nodes assigned `revision` that neither run it (Running, ready not false) nor failed on it. */
export function countUpdating(nodes: ReadonlyMap<string, NodeView>, revision: number, excluded?: ReadonlySet<string>): number {
  let n = 0;
  for (const [node, v] of nodes) {
    if (v.assigned !== revision || excluded?.has(node)) continue;
    const r = v.reported;
    if (r && r.revision === revision && ((r.state === 'Running' && r.ready !== false) || isFailedState(r.state))) continue;
    n++;
  }
  return n;
}
