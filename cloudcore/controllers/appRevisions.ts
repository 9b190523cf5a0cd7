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

/** The AppRevision to create for the app's current spec, or undefined when the newest one already has it. */
export function revisionToCreate(app: App, revisions: readonly AppRevision[]): AppRevision | undefined {
  const newest = revisions.reduce<AppRevision | undefined>((a, r) => (!a || r.spec.revision > a.spec.revision ? r : a), undefined);
  const variants = app.spec.variants ?? [];
  if (newest && contentOf(newest.spec.template, newest.spec.variants) === contentOf(app.spec.template, variants)) return undefined;
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
