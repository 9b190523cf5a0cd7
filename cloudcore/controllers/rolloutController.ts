import type { Logger } from 'pino';
import type { Node, Rollout, RolloutPhase } from '../../protocol/index.js';
import { canonicalJson } from '../store/objectMeta.js';
import type { Store, WatchEvent } from '../store/store.js';
import { ChangeFilter } from './changeFilter.js';
import { MirrorController } from './mirrorController.js';
import type { StoreMirror } from './storeMirror.js';
import { rollbackToSync, revisionsToPrune, revisionToCreate } from './appRevisions.js';
import { workloadAppOf } from './rolloutNodes.js';
import { labelKey } from './scheduling.js';
import { significantChange } from './rolloutMachine.js';
import { planRollout, rolloutEventObject, type RolloutEventSpec } from './rolloutPlan.js';

/**
 * I/O shell around the rollout state machine (rolloutPlan.ts). After any change to apps,
 * nodes, workloads or rollouts (batched), and on a tick while some rollout waits on time
 * (minReadySeconds, offline window), it: creates AppRevisions for changed apps, steps each
 * app's Rollout and writes it when it changed, records rollout Events, prunes old revisions,
 * and removes the rollout objects of deleted apps. All state lives in the store, so a restart
 * resumes where the last write left off. Changes that only move counts or readiness clocks
 * are written at most once per tick (a large fleet reports many statuses per second); a
 * restart then loses at most one tick of them, which only delays a minReadySeconds gate.
 */

export interface RolloutControllerOptions {
  /** How often time-driven conditions are re-checked while a rollout is under way (ms). */
  tickMs?: number;
  /**
   * Changes arriving within this window are handled in one pass (ms). Wider than the
   * scheduler's: every edge status report is a change, and a pass walks the app's whole fleet,
   * so at 10,000 nodes a narrow window turns an ack storm into back-to-back passes that starve
   * the hub. A rollout step a fraction of a second later costs nothing.
   */
  batchMs?: number;
  /** The clock; tests and the simulated fleet may pass their own. */
  now?: () => number;
}

const MIRRORED = ['App', 'AppRevision', 'Rollout', 'Node', 'Workload'] as const;
type MirroredKind = typeof MIRRORED[number];

const ACTIVE: readonly RolloutPhase[] = ['Progressing', 'Paused', 'AwaitingApproval'];

export class RolloutController extends MirrorController<MirroredKind> {
  private readonly nodeKeys = new ChangeFilter<Node>(nodeKey);
  private eventSeq = 0;
  /** Per app: a stepped Rollout whose only changes (counts, readiness clocks) wait for the next write. */
  private readonly deferred = new Map<string, Rollout>();
  private readonly lastWrite = new Map<string, number>();
  private readonly tickMs: number;
  private readonly now: () => number;

  constructor(store: Store, log: Logger, opts: RolloutControllerOptions = {}) {
    super(store, log, MIRRORED, 'rollout', opts.batchMs ?? 250, opts.tickMs ?? 1000);
    this.tickMs = opts.tickMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  protected override changes(event: WatchEvent): boolean {
    switch (event.object.kind) {
      // Heartbeats and acks rewrite Node status all the time; a rollout reacts only to labels
      // and phase (the offline window is a matter of time, which the tick covers).
      case 'Node': return this.nodeKeys.changed(event.type, event.object);
      // Created and pruned by this controller: its own writes need no pass.
      case 'AppRevision': return false;
      default: return true;
    }
  }

  protected override seed(mirror: StoreMirror<MirroredKind>): void {
    this.nodeKeys.seed(mirror.items('Node'));
  }

  protected async reconcile(mirror: StoreMirror<MirroredKind>): Promise<void> {
    const apps = mirror.items('App');
    const rollouts = mirror.items('Rollout');
    const nodes = mirror.items('Node');
    const appsByName = new Map(apps.map((a) => [a.metadata.name, a]));
    const revisionsByApp = groupBy(mirror.items('AppRevision'), (r) => r.spec.app);
    const workloadsByApp = groupBy(mirror.items('Workload'), workloadAppOf);
    const rolloutsByApp = new Map(rollouts.map((r) => [r.metadata.name, r]));
    let waiting = false;

    // Rollouts and revisions of apps that are gone (or were re-created under the same name).
    for (const rollout of rollouts) {
      const app = appsByName.get(rollout.metadata.name);
      if (app && !(rollout.spec.appUid && app.metadata.uid && rollout.spec.appUid !== app.metadata.uid)) continue;
      await this.tolerate(() => this.store.delete('Rollout', rollout.metadata.name, { resourceVersion: rollout.metadata.resourceVersion }));
      rolloutsByApp.delete(rollout.metadata.name);
      for (const r of revisionsByApp.get(rollout.metadata.name) ?? []) await this.tolerate(() => this.store.delete('AppRevision', r.metadata.name));
      revisionsByApp.delete(rollout.metadata.name);
    }
    for (const [app, revisions] of revisionsByApp) {
      if (appsByName.has(app)) continue;
      for (const r of revisions) await this.tolerate(() => this.store.delete('AppRevision', r.metadata.name));
    }

    for (const app of apps) {
      const name = app.metadata.name;
      const revisions = revisionsByApp.get(name) ?? [];
      const stored = rolloutsByApp.get(name);
      const syncTo = rollbackToSync(app, revisions, stored);
      if (syncTo) {
        // The App's change brings the next pass, which plans from the synced spec.
        await this.tolerate(() => this.store.update({ ...app, spec: { ...app.spec, template: syncTo.spec.template, variants: syncTo.spec.variants } }));
        this.log.info({ app: name, revision: syncTo.spec.revision }, 'app spec set to the rolled-back-to revision');
        continue;
      }
      const fresh = revisionToCreate(app, revisions, stored);
      if (fresh) {
        const created = await this.tolerate(() => this.store.create(fresh));
        if (!created) continue;
        revisions.push(created);
        this.log.info({ app: name, revision: created.spec.revision }, 'app revision created');
      }
      const appWorkloads = workloadsByApp.get(name) ?? [];
      const deferred = this.deferred.get(name);
      const plan = planRollout({
        app, revisions: new Map(revisions.map((r) => [r.spec.revision, r])),
        // Carry on from the state not yet written, as long as nobody else wrote the Rollout meanwhile.
        rollout: deferred && stored && deferred.metadata.resourceVersion === stored.metadata.resourceVersion ? deferred : stored,
        nodes, workloads: appWorkloads, now: this.now(),
      });
      if (!plan.rollout) continue;
      const next = plan.rollout;
      let written: Rollout | undefined = stored;
      if (!stored || differs(next, stored)) {
        if (stored && plan.events.length === 0 && !significantChange(next.status, stored.status) && this.now() - (this.lastWrite.get(name) ?? 0) < this.tickMs) {
          // Only counts and readiness clocks moved: keep them in memory and write at most once a tick.
          this.deferred.set(name, next);
          waiting = true;
          continue;
        }
        written = await this.tolerate(() => (next.metadata.resourceVersion === undefined ? this.store.create(next) : this.store.update(next)));
        this.deferred.delete(name);
        if (!written) continue;
        this.lastWrite.set(name, this.now());
        await this.record(name, written.status.revision, plan.events);
      } else {
        this.deferred.delete(name);
      }
      if (!written) continue;
      for (const old of revisionsToPrune(revisions, written, appWorkloads)) {
        await this.tolerate(() => this.store.delete('AppRevision', old.metadata.name));
      }
      const s = written.status;
      if (ACTIVE.includes(s.phase) || s.counts.updating + s.counts.pending > 0 || (s.phase === 'Failed' && s.stableRevision === null)) waiting = true;
    }
    this.waitingOnTime = waiting;
  }

  private async record(app: string, revision: number, events: readonly RolloutEventSpec[]): Promise<void> {
    for (const e of events) {
      await this.tolerate(() => this.store.create(rolloutEventObject(app, revision, e, this.now(), ++this.eventSeq)));
      this.log.info({ app, reason: e.reason }, e.message);
    }
  }

}

function differs(a: Rollout, b: Rollout): boolean {
  return canonicalJson({ ...a.status, updatedAt: '' }) !== canonicalJson({ ...b.status, updatedAt: '' }) || canonicalJson(a.spec) !== canonicalJson(b.spec);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

function nodeKey(node: Node): string {
  return `${node.status.phase} ${labelKey(node.metadata.labels)}`;
}
