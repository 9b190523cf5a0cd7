import { appRevisionName, type App, type AppRevision, type Rollout, type Workload } from '../../protocol/index.js';
import { canonicalJson } from '../store/objectMeta.js';

/**
 * Pure: when an app gets a new immutable AppRevision, and which old ones can go. A revision is
 * the app's template and variants as of a change; its number is the App's metadata.generation
 * then (selector or strategy edits bump the generation but make no revision, so numbers skip).
 */

/** Revisions kept beyond the ones still in use, for `rollout history` and `rollback`. */
export const KEPT_REVISIONS = 10;

function contentOf(template: unknown, variants: unknown): string {
  return canonicalJson({ template, variants });
}

/**
 * The revision the app's spec should hold: one not yet taken up by the rollout (the newest),
 * else the one the rollout targets, which after a rollback is an older one (docs/rollouts.md).
 */
export function targetRevision(revisions: readonly AppRevision[], rollout: Rollout | undefined): AppRevision | undefined {
  const newest = revisions.reduce<AppRevision | undefined>((a, r) => (!a || r.spec.revision > a.spec.revision ? r : a), undefined);
  if (!newest || !rollout || newest.spec.revision > rollout.status.observedRevision) return newest;
  return revisions.find((r) => r.spec.revision === rollout.status.revision) ?? newest;
}

/**
 * After a rollback (manual or automatic) the App's template and variants become the
 * rolled-back-to revision's, as Kubernetes does with `rollout undo`, so the app says what its
 * nodes run. Returns that revision while the App still holds other content and nobody edited
 * it since its newest revision (an edit after the rollback wins and makes a new revision).
 */
export function rollbackToSync(app: App, revisions: readonly AppRevision[], rollout: Rollout | undefined): AppRevision | undefined {
  if (!rollout || rollout.status.phase !== 'RolledBack') return undefined;
  const target = targetRevision(revisions, rollout);
  const newest = Math.max(0, ...revisions.map((r) => r.spec.revision));
  if (!target || target.spec.revision === newest || (app.metadata.generation ?? 1) > newest) return undefined;
  if (contentOf(target.spec.template, target.spec.variants) === contentOf(app.spec.template, app.spec.variants ?? [])) return undefined;
  return target;
}

/**
 * The AppRevision to create for the app's current spec, or undefined when the revision the
 * app should hold (targetRevision) already has it; after a rollback that is the older revision.
 */
export function revisionToCreate(app: App, revisions: readonly AppRevision[], rollout?: Rollout): AppRevision | undefined {
  const newest = revisions.reduce<AppRevision | undefined>((a, r) => (!a || r.spec.revision > a.spec.revision ? r : a), undefined);
  const target = targetRevision(revisions, rollout);
  const variants = app.spec.variants ?? [];
  if (target && contentOf(target.spec.template, target.spec.variants) === contentOf(app.spec.template, variants)) return undefined;
  // Rolled back, and the App not yet given the target's spec (rollbackToSync does that): no revision of the old content.
  if (rollbackToSync(app, revisions, rollout)) return undefined;
  // A generation can only be behind the newest revision if the app was re-created before we
  // noticed; the caller clears the old revisions first, so this is a safety net.
  const revision = Math.max(app.metadata.generation ?? 1, (newest?.spec.revision ?? 0) + (newest ? 1 : 0));
  return {
    kind: 'AppRevision',
    metadata: { name: appRevisionName(app.metadata.name, revision), labels: { 'edgefleet.io/app': app.metadata.name } },
    spec: { app: app.metadata.name, revision, template: app.spec.template, variants },
  };
}

/** Revisions nothing refers to any more, beyond the newest KEPT_REVISIONS. */
export function revisionsToPrune(revisions: readonly AppRevision[], rollout: Rollout | undefined, workloads: readonly Workload[], keep = KEPT_REVISIONS): AppRevision[] {
  const inUse = new Set<number>(workloads.map((w) => w.spec.generation));
  if (rollout) {
    const s = rollout.status;
    for (const n of [s.revision, s.observedRevision, ...Object.values(s.assignments)]) inUse.add(n);
    if (s.stableRevision !== null) inUse.add(s.stableRevision);
  }
  const newestFirst = [...revisions].sort((a, b) => b.spec.revision - a.spec.revision);
  return newestFirst.slice(keep).filter((r) => !inUse.has(r.spec.revision));
}
