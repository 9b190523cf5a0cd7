import type { Logger } from 'pino';
import type { Store, WatchEvent } from '../store/store.js';
import { MirrorController } from './mirrorController.js';
import type { StoreMirror } from './storeMirror.js';
import type { AppRevision, Node, Rollout } from '../../protocol/index.js';
import { ChangeFilter } from './changeFilter.js';
import { desiredWorkloads, labelKey, planBindings } from './scheduling.js';
import { hasJoined } from './rolloutNodes.js';
import { eachAtMost } from '../limits/eachAtMost.js';

const MIRRORED = ['App', 'Node', 'Workload', 'Config', 'Secret', 'Rollout', 'AppRevision'] as const;
type MirroredKind = typeof MIRRORED[number];

/**
 * I/O shell around `scheduling.ts`: mirrors what it plans from (storeMirror.ts) and after any
 * change that can move a binding (batched) reconciles the Workload objects so each app is
 * bound to exactly the nodes it selects, at the revision its rollout assigns.
 * Conflicts (an edge status write racing ours) simply trigger another pass.
 */
export class Scheduler extends MirrorController<MirroredKind> {
  private readonly nodeLabels = new ChangeFilter<Node>((node) => `${hasJoined(node)}:${labelKey(node.metadata.labels)}`);
  /** Per rollout, what the scheduler reads of it: only a change there needs a pass. */
  private readonly rolloutKeys = new ChangeFilter<Rollout>(rolloutKey);

  constructor(store: Store, log: Logger, batchMs = 20) {
    super(store, log, MIRRORED, 'scheduling', batchMs);
  }

  protected override changes(event: WatchEvent): boolean {
    switch (event.object.kind) {
      // Edge status reports and our own writes: they cannot change what should be bound.
      case 'Workload': return false;
      // Heartbeats cannot change bindings: only membership, labels and first joining can.
      case 'Node': return this.nodeLabels.changed(event.type, event.object);
      // Rollout status changes mostly in its counts; only assignments and revisions move workloads.
      case 'Rollout': return this.rolloutKeys.changed(event.type, event.object);
      default: return true;
    }
  }

  protected override seed(mirror: StoreMirror<MirroredKind>): void {
    this.nodeLabels.seed(mirror.items('Node'));
    this.rolloutKeys.seed(mirror.items('Rollout'));
  }

  protected async reconcile(mirror: StoreMirror<MirroredKind>): Promise<void> {
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
    const collisions: string[] = [];
    const plan = planBindings(desiredWorkloads(apps, nodes, data, context, collisions), workloads);
    for (const message of collisions) this.log.warn(message);
    let writes = 0;
    // Yield now and then so the hub can start sending to the first nodes while the rest are written.
    const pace = async () => { if (++writes % 100 === 0) await new Promise((r) => setImmediate(r)); };
    await eachAtMost(plan.create, WRITES_IN_FLIGHT, async (w) => { await this.tolerate(() => this.store.create(w)); await pace(); });
    await eachAtMost(plan.update, WRITES_IN_FLIGHT, async (w) => { await this.tolerate(() => this.store.update(w)); await pace(); });
    await eachAtMost(plan.remove, WRITES_IN_FLIGHT, async (w) => {
      await this.tolerate(() => this.store.delete('Workload', w.metadata.name, { resourceVersion: w.metadata.resourceVersion }));
      await pace();
    });
    const changed = plan.create.length + plan.update.length + plan.remove.length;
    if (changed > 0) {
      this.log.info({ created: plan.create.length, updated: plan.update.length, removed: plan.remove.length }, 'workload bindings reconciled');
    }
  }

}

/**
 * Workload writes a pass keeps in flight. Each is its own transaction; over etcd that is a
 * consensus round trip, so one at a time bound a 10,000-node fan-out to the round-trip time
 * (75 writes/s measured); many at once let etcd batch them. SQLite writes synchronously inside
 * each call, so there it changes nothing.
 */
const WRITES_IN_FLIGHT = 64;

function rolloutKey(r: Rollout): string {
  const s = r.status;
  return JSON.stringify([s.revision, s.stableRevision, s.assignments]);
}
