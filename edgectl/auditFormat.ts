import type { AuditRecord, OperatorTokenView } from '../protocol/index.js';
import { formatAge, type Row } from './format.js';

/** Pure table views for `edgectl token operator list` and `edgectl audit`. */

export const OPERATOR_TOKEN_COLUMNS = ['NAME', 'ID', 'ROLE', 'CREATED', 'EXPIRES', 'LAST-USED'];

export function operatorTokenRow(t: OperatorTokenView, now: Date): Row {
  return [t.name, t.id, t.role, formatAge(t.createdAt, now), formatExpiry(t.expiresAt, now), t.lastUsedAt ? `${formatAge(t.lastUsedAt, now)} ago` : '<never>'];
}

/** `in 89d`, or `expired 2d ago`: whether the token still works matters more than the date. */
export function formatExpiry(expiresAt: string, now: Date): string {
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return '<unknown>';
  return at > now.getTime() ? `in ${formatAge(now.toISOString(), new Date(at))}` : `expired ${formatAge(expiresAt, now)} ago`;
}

export const AUDIT_COLUMNS = ['TIME', 'TOKEN', 'ROLE', 'VERB', 'TARGET', 'STATUS', 'SOURCE', 'REQUEST-ID'];

export function auditRow(r: AuditRecord): Row {
  return [r.time, r.tokenName, r.role ?? '-', r.verb, formatTarget(r.target), String(r.status), r.sourceAddress, r.requestId];
}

/** `workload/talker on edge-1`, `node/edge-1`, `app` (a create whose body named nothing). */
export function formatTarget(target: AuditRecord['target']): string {
  if (!target) return '-';
  const what = target.name === null ? target.kind.toLowerCase() : `${target.kind.toLowerCase()}/${target.name}`;
  return target.node ? `${what} on ${target.node}` : what;
}
