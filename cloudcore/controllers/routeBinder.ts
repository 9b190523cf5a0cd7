import type { Logger } from 'pino';
import type { Store, WatchEvent } from '../store/store.js';
import { MirrorController } from './mirrorController.js';
import type { StoreMirror } from './storeMirror.js';
import { desiredNodeRoutes, planNodeRoutes } from './routeBinding.js';
import type { Node } from '../../protocol/index.js';
import { ChangeFilter } from './changeFilter.js';
import { hasJoined } from './rolloutNodes.js';
import { labelKey } from './scheduling.js';

const MIRRORED = ['Route', 'Node', 'Secret', 'NodeRoute'] as const;
type MirroredKind = typeof MIRRORED[number];

/**
 * I/O shell around routeBinding.ts: keeps one NodeRoute per (route, selected node), so each
 * node's link session sends that node its own routes and nothing else.
 */
export class RouteBinder extends MirrorController<MirroredKind> {
  private readonly nodeLabels = new ChangeFilter<Node>((node) => `${hasJoined(node)}:${labelKey(node.metadata.labels)}`);

  constructor(store: Store, log: Logger, batchMs = 20) {
    super(store, log, MIRRORED, 'route binding', batchMs);
  }

  protected override changes(event: WatchEvent): boolean {
    // Heartbeats rewrite Nodes all the time; only labels and joining move a binding.
    if (event.object.kind === 'Node') return this.nodeLabels.changed(event.type, event.object);
    return true;
  }

  protected override seed(mirror: StoreMirror<MirroredKind>): void {
    this.nodeLabels.seed(mirror.items('Node'));
  }

  protected async reconcile(mirror: StoreMirror<MirroredKind>): Promise<void> {
    const secrets = new Map(mirror.items('Secret').map((s) => [s.metadata.name, s.data]));
    const plan = planNodeRoutes(desiredNodeRoutes(mirror.items('Route'), mirror.items('Node'), secrets), mirror.items('NodeRoute'));
    for (const r of plan.create) await this.tolerate(() => this.store.create(r));
    for (const r of plan.update) await this.tolerate(() => this.store.update(r));
    for (const r of plan.remove) await this.tolerate(() => this.store.delete('NodeRoute', r.metadata.name, { resourceVersion: r.metadata.resourceVersion }));
    const changed = plan.create.length + plan.update.length + plan.remove.length;
    if (changed > 0) this.log.info({ created: plan.create.length, updated: plan.update.length, removed: plan.remove.length }, 'route bindings reconciled');
  }
}
