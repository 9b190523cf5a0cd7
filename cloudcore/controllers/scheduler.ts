import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import { PassRunner } from './passRunner.js';
import { StoreMirror } from './storeMirror.js';
import type { AppRevision, Node, Rollout } from '../../protocol/index.js';
import { ChangeFilter } from './changeFilter.js';
import { desiredWorkloads, labelKey, planBindings } from './scheduling.js';
import { hasJoined } from './rolloutNodes.js';

const MIRRORED = ['App', 'Node', 'Workload', 'Config', 'Secret', 'Rollout', 'AppRevision'] as const;
type MirroredKind = typeof MIRRORED[number];

/**
 * I/O shell around `scheduling.ts`: mirrors what it plans from (storeMirror.ts) and after any
 * change that can move a binding (batched) reconciles the Workload objects so each app is
 * bound to exactly the nodes it selects, at the revision its rollout assigns.
 * Conflicts (an edge status write racing ours) simply trigger another pass.
 */
export class Scheduler {
  private mirror: StoreMirror<MirroredKind> | undefined;
  private readonly nodeLabels = new ChangeFilter<Node>((node) => `${hasJoined(node)}:${labelKey(node.metadata.labels)}`);
  /** Per rollout, what the scheduler reads of it: only a change there needs a pass. */
  private readonly rolloutKeys = new ChangeFilter<Rollout>(rolloutKey);
  private readonly runner: PassRunner;
  passes = 0;

  constructor(private readonly store: Store, private readonly log: Logger, batchMs = 20) {
    this.runner = new PassRunner(() => this.reconcile(), log, 'scheduling', batchMs);
  }

  async start(): Promise<void> {
    this.mirror = await StoreMirror.open(this.store, MIRRORED, (event) => {
      switch (event.object.kind) {
        // Edge status reports and our own writes: they cannot change what should be bound.
        case 'Workload': return;
        case 'Node': {
          // Heartbeats cannot change bindings: only membership, labels and first joining can.
          if (!this.nodeLabels.changed(event.type, event.object)) return;
          break;
        }
        case 'Rollout': {
          // Rollout status changes mostly in its counts; only assignments and revisions move workloads.
          if (!this.rolloutKeys.changed(event.type, event.object)) return;
          break;
        }
        default: break;
      }
      this.trigger();
    });
    this.nodeLabels.seed(this.mirror.items('Node'));
    this.rolloutKeys.seed(this.mirror.items('Rollout'));
    this.trigger();
  }

  trigger(): void { this.runner.trigger(); }

  private async reconcile(): Promise<void> {
    this.passes++;
    const mirror = this.mirror;
    if (!mirror) return;
    const apps = mirror.items('App');
    const nodes = mirror.items('Node');
    const workloads = mirror.items('Workload');
    const data = {
      configs: new Map(mirror.items('Config').map((c) => [c.metadata.name, c.data])),
      secrets: new Map(mirror.items('Secret').map((c) => [c.metadata.name, c.data])),
    };
    const revisionsByApp = new Map<string, Map<number, AppRevision>>();
    for (const r of mirror.items('AppRevision')) {
      const forApp = revisionsByApp.get(r.spec.app) ?? new Map<number, AppRevision>();
      forApp.set(r.spec.revision, r);
      revisionsByApp.set(r.spec.app, forApp);
    }
    const context = {
      rollouts: new Map(mirror.items('Rollout').map((r) => [r.metadata.name, r])),
      revisions: revisionsByApp,
      existing: new Map(workloads.map((w) => [w.metadata.name, w])),
    };
    const plan = planBindings(desiredWorkloads(apps, nodes, data, context), workloads);
    let writes = 0;
    // Yield now and then so the hub can start sending to the first nodes while the rest are written.
    const pace = async () => { if (++writes % 100 === 0) await new Promise((r) => setImmediate(r)); };
    for (const w of plan.create) { await this.tolerate(() => this.store.create(w)); await pace(); }
    for (const w of plan.update) { await this.tolerate(() => this.store.update(w)); await pace(); }
    for (const w of plan.remove) {
      await this.tolerate(() => this.store.delete('Workload', w.metadata.name, { resourceVersion: w.metadata.resourceVersion }));
      await pace();
    }
    const changed = plan.create.length + plan.update.length + plan.remove.length;
    if (changed > 0) {
      this.log.info({ created: plan.create.length, updated: plan.update.length, removed: plan.remove.length }, 'workload bindings reconciled');
    }
  }

  /** A conflict or vanished object means our view was stale: another pass redoes it. */
  private async tolerate(write: () => Promise<unknown>): Promise<void> { await this.runner.tolerate(write); }

  async stop(): Promise<void> {
    this.mirror?.close();
    await this.runner.stop();
  }
}

function rolloutKey(r: Rollout): string {
  const s = r.status;
  return JSON.stringify([s.revision, s.stableRevision, s.assignments]);
}
