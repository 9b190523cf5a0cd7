import type { ReportedTwin } from '../../protocol/index.js';

/**
 * Merges an edge's reported twin section into the cloud's. The device wins for the values;
 * the cloud owns its `version`, which never goes backwards and moves forward whenever a value
 * changes, so anything ordering by `version.reported` (a watcher, a client's cache) never sees
 * two different states under one version.
 *
 * The edge's count is only comparable to ours while it is ahead: a wiped edge database (or a
 * device moved to another node) starts it over at 1 while we hold, say, 5.
 * - Edge ahead (`incoming.version > current.version`): its whole section replaces ours
 *   (deletions included) and we take its version, which is at least ours + 1.
 * - Edge not ahead: per property, the value with the newer `updatedAt` wins (properties the
 *   edge no longer holds keep their last known value); if any value changed, the version is
 *   ours + 1, else it stays.
 * Either way the new version is max(ours + 1, edge's) on a change and never below ours.
 */
export function mergeReported(current: ReportedTwin | undefined, incoming: ReportedTwin): ReportedTwin {
  if (!current || incoming.version > current.version) return incoming;
  const reported = { ...current.reported };
  const metadata = { ...current.metadata };
  let changed = false;
  for (const [prop, value] of Object.entries(incoming.reported)) {
    const at = incoming.metadata[prop]?.updatedAt ?? '';
    if (at > (current.metadata[prop]?.updatedAt ?? '')) {
      if (reported[prop] !== value) changed = true; // values are numbers, strings or booleans
      reported[prop] = value;
      metadata[prop] = { updatedAt: at };
    }
  }
  return { reported, metadata, version: changed ? current.version + 1 : current.version };
}

