import type { AppRevision, NodeCounts, Rollout, WorkloadTemplate } from '../protocol/index.js';
import { formatAge, oneLine, renderFields, renderTable, type Row } from './format.js';

/**
 * Pure presentation of rollouts: the status view (fields, a progress bar, one row per wave)
 * and the revision history.
 */

export const TERMINAL_PHASES = ['Succeeded', 'Failed', 'RolledBack', 'Aborted'];

/** `[#######.............]  7/20 healthy`: healthy nodes out of the targeted fleet. */
export function progressBar(counts: NodeCounts, width = 30): string {
  const total = counts.pending + counts.updating + counts.healthy + counts.failed + counts.offline;
  const filled = total === 0 ? width : Math.round((counts.healthy / total) * width);
  const failed = total === 0 ? 0 : Math.min(width - filled, Math.ceil((counts.failed / total) * width));
  return `[${'#'.repeat(filled)}${'x'.repeat(failed)}${'.'.repeat(width - filled - failed)}] ${counts.healthy}/${total} healthy`;
}

export const WAVE_COLUMNS = ['WAVE', 'TARGET', 'SIZE', 'STATE', 'APPROVAL', 'PENDING', 'UPDATING', 'HEALTHY', 'FAILED', 'OFFLINE'];

export function waveRows(rollout: Rollout): Row[] {
  return rollout.status.waves.map((w) => [
    String(w.index + 1), String(w.target), String(w.size), w.state,
    w.approval ? (w.approved ? 'approved' : 'required') : '-',
    String(w.counts.pending), String(w.counts.updating), String(w.counts.healthy), String(w.counts.failed), String(w.counts.offline),
  ]);
}

export function rolloutStatusView(rollout: Rollout, now: Date): string {
  const s = rollout.status;
  const fields: Array<[string, string]> = [
    ['App', rollout.spec.app],
    ['Phase', s.phase],
    ['Revision', String(s.revision)],
    ['Stable', s.stableRevision === null ? '<none>' : String(s.stableRevision)],
    // Waves are numbered from 1 for people, as in the dashboard (the API's index is 0-based).
    ['Wave', s.waves.length === 0 ? '-' : `${s.wave + 1} of ${s.waves.length}`],
    ['Max unavailable', String(s.maxUnavailable)],
    ['Bad revisions', s.badRevisions.length === 0 ? '<none>' : s.badRevisions.join(', ')],
    ['Started', `${formatAge(s.startedAt, now)} ago`],
    ['Message', oneLine(s.message)],
    ['Progress', progressBar(s.counts)],
  ];
  return renderFields(fields) + '\n' + renderTable(WAVE_COLUMNS, waveRows(rollout));
}

export const HISTORY_COLUMNS = ['REVISION', 'AGE', 'ROLE', 'VARIANTS', 'TEMPLATE'];

/** What a template runs, in one line: the image, or the command and its args. */
export function templateSummary(template: WorkloadTemplate): string {
  const env = Object.keys(template.env).length;
  const what = template.runtime === 'container'
    ? template.image
    : [template.command, ...template.args].join(' ');
  return oneLine(`${template.runtime}: ${what}${env ? ` (env: ${Object.entries(template.env).map(([k, v]) => `${k}=${v}`).join(',')})` : ''}`, 100);
}

/** Each revision with its part in the rollout: target, stable, bad (rolled back). */
export function historyRows(revisions: readonly AppRevision[], rollout: Rollout | undefined, now: Date): Row[] {
  return revisions.map((r) => {
    const n = r.spec.revision;
    const roles: string[] = [];
    if (rollout) {
      if (n === rollout.status.revision) roles.push(rollout.status.phase === 'Succeeded' || rollout.status.phase === 'RolledBack' ? 'current' : `target (${rollout.status.phase})`);
      if (n === rollout.status.stableRevision && n !== rollout.status.revision) roles.push('stable');
      if (rollout.status.badRevisions.includes(n)) roles.push('bad (rolled back)');
    }
    return [String(n), formatAge(r.metadata.creationTimestamp, now), roles.join(', ') || '-', r.spec.variants.map((v) => v.name).join(',') || '-', templateSummary(r.spec.template)];
  });
}
