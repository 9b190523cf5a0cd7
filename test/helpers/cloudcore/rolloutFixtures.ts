import type {
  App, AppRevision, Node, Rollout, RolloutStrategy, Variant, Workload, WorkloadState, WorkloadTemplate,
} from '../../../protocol/index.js';
import { readModifyWrite } from '../../../cloudcore/store/readModifyWrite.js';
import type { Store } from '../../../cloudcore/store/store.js';
import { revisionToCreate } from '../../../cloudcore/controllers/appRevisions.js';
import { workloadAppOf } from '../../../cloudcore/controllers/rolloutNodes.js';
import { planRollout, type RolloutEventSpec } from '../../../cloudcore/controllers/rolloutPlan.js';
import { desiredWorkloads, planBindings } from '../../../cloudcore/controllers/scheduling.js';

/**
 * Test support for the rollout logic: a tiny in-memory world where the pure scheduler and the
 * pure state machine run against each other, and tests play the edges (report a state per
 * node). No I/O, except `reportRunning`, which plays the edges against a real store for the
 * API and CLI tests (the hub would write the same after an edge reported).
 */

/** Every workload whose status is not yet about its spec's revision reports Running on it. */
export async function reportRunning(store: Store, failing: ReadonlySet<number> = new Set()): Promise<void> {
  for (const w of (await store.list('Workload')).items) {
    if (w.status?.generation === w.spec.generation) continue;
    await readModifyWrite(store, 'Workload', w.metadata.name, (cur): Workload => ({
      ...cur,
      status: { state: failing.has(cur.spec.generation) ? 'CrashLoop' : 'Running', restarts: 0, generation: cur.spec.generation, observedAt: new Date().toISOString() },
    }));
  }
}

export function processTemplate(version: string): WorkloadTemplate {
  return { runtime: 'process', command: 'sleep', args: ['60'], env: { VERSION: version }, restartPolicy: 'Always', probes: {}, configs: [], secrets: [] };
}

export function fleetNode(name: string, labels: Record<string, string> = {}, phase: Node['status']['phase'] = 'Ready'): Node {
  return { kind: 'Node', metadata: { name, labels }, spec: {}, status: { phase, since: '', lastSeen: null, epoch: null, ackedRevision: 0, agent: null } };
}

export class RolloutWorld {
  app: App;
  revisions = new Map<number, AppRevision>();
  rollout: Rollout | undefined;
  nodes: Node[];
  workloads = new Map<string, Workload>();
  events: RolloutEventSpec[] = [];
  now = 1_700_000_000_000;
  /** Every rollout state the machine produced, for invariant checks. */
  history: Rollout[] = [];
  /** Revisions that fail on given nodes when they run them: revision → node names ('*' = all). */
  failing = new Map<number, Set<string>>();
  /** Nodes that were ever handed each revision by the scheduler: revision → node names. */
  received = new Map<number, Set<string>>();

  constructor(nodes: Node[], strategy?: RolloutStrategy, variants?: Variant[]) {
    this.nodes = nodes;
    this.app = { kind: 'App', metadata: { name: 'web', generation: 1, uid: 'uid-web' }, spec: { selector: {}, template: processTemplate('v1'), ...(strategy ? { strategy } : {}), ...(variants ? { variants } : {}) } };
  }

  /** Operator edits the app: generation bumps like the store does on a spec change. */
  editApp(mutate: (spec: App['spec']) => App['spec']): void {
    this.app = { ...this.app, metadata: { ...this.app.metadata, generation: (this.app.metadata.generation ?? 1) + 1 }, spec: mutate(structuredClone(this.app.spec)) };
  }

  /** One controller pass: new revision if needed, then a state-machine step. */
  step(): void {
    const fresh = revisionToCreate(this.app, [...this.revisions.values()]);
    if (fresh) this.revisions.set(fresh.spec.revision, fresh);
    const plan = planRollout({ app: this.app, revisions: this.revisions, rollout: this.rollout, nodes: this.nodes, workloads: [...this.workloads.values()], now: this.now });
    if (plan.rollout && plan.changed) {
      this.rollout = { ...plan.rollout, metadata: { ...plan.rollout.metadata, resourceVersion: (plan.rollout.metadata.resourceVersion ?? 0) + 1 } };
      this.history.push(structuredClone(this.rollout));
    }
    this.events.push(...plan.events);
  }

  /** One scheduler pass: workloads follow the rollout's assignments. */
  schedule(): void {
    const context = {
      rollouts: new Map(this.rollout ? [[this.app.metadata.name, this.rollout]] : []),
      revisions: new Map([[this.app.metadata.name, this.revisions]]),
      existing: this.workloads,
    };
    const plan = planBindings(desiredWorkloads([this.app], this.nodes, undefined, context), [...this.workloads.values()]);
    for (const w of [...plan.create, ...plan.update]) {
      this.workloads.set(w.metadata.name, w);
      const got = this.received.get(w.spec.generation) ?? new Set<string>();
      got.add(w.spec.nodeName);
      this.received.set(w.spec.generation, got);
    }
    for (const w of plan.remove) this.workloads.delete(w.metadata.name);
  }

  /** The edges: every online node runs what its workloads say (Running, or CrashLoop where told to fail). */
  runEdges(opts: { only?: string[] } = {}): void {
    for (const w of this.workloads.values()) {
      const node = this.nodes.find((n) => n.metadata.name === w.spec.nodeName);
      if (!node || node.status.phase !== 'Ready') continue;
      if (opts.only && !opts.only.includes(w.spec.nodeName)) continue;
      const failing = this.failing.get(w.spec.generation);
      const state: WorkloadState = failing && (failing.has('*') || failing.has(w.spec.nodeName)) ? 'CrashLoop' : 'Running';
      // Edges report changes only.
      if (w.status?.generation === w.spec.generation && w.status.state === state) continue;
      this.report(w, state);
    }
  }

  report(w: Workload, state: WorkloadState, ready?: boolean): void {
    this.workloads.set(w.metadata.name, { ...w, status: { state, restarts: 0, generation: w.spec.generation, observedAt: new Date(this.now).toISOString(), ...(ready !== undefined ? { ready } : {}) } });
  }

  /** A full round: controller, scheduler, edges, controller again. */
  round(): void {
    this.step();
    this.schedule();
    this.runEdges();
    this.step();
  }

  /** Rounds until the rollout stops changing (bounded); the clock moves `advanceMs` per round. */
  settle(advanceMs = 0, maxRounds = 200): void {
    for (let i = 0; i < maxRounds; i++) {
      const before = JSON.stringify([this.rollout?.status, [...this.workloads.values()]]);
      this.now += advanceMs;
      this.round();
      if (JSON.stringify([this.rollout?.status, [...this.workloads.values()]]) === before) return;
    }
    throw new Error('rollout world did not settle');
  }

  revisionOf(node: string): number | undefined {
    return this.workloads.get(`web.${node}`)?.spec.generation;
  }

  runningRevisions(): Map<string, number | undefined> {
    return new Map(this.nodes.map((n) => [n.metadata.name, this.workloads.get(`web.${n.metadata.name}`)?.status?.generation]));
  }

  appWorkloads(): Workload[] {
    return [...this.workloads.values()].filter((w) => workloadAppOf(w) === 'web');
  }

  setOnline(name: string, online: boolean): void {
    this.nodes = this.nodes.map((n) => (n.metadata.name === name
      ? { ...n, status: { ...n.status, phase: online ? 'Ready' : 'Offline', lastSeen: online ? new Date(this.now).toISOString() : n.status.lastSeen } }
      : n));
  }

  setLabels(name: string, labels: Record<string, string>): void {
    this.nodes = this.nodes.map((n) => (n.metadata.name === name ? { ...n, metadata: { ...n.metadata, labels } } : n));
  }
}

export function nodesNamed(count: number, labels: Record<string, string> = {}): Node[] {
  return Array.from({ length: count }, (_, i) => fleetNode(`edge-${String(i).padStart(3, '0')}`, labels));
}
