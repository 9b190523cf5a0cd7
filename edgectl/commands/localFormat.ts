import type { EdgeStatus } from '../../protocol/edgeStatus.js';
import { APP_GRANT_COLUMNS, appGrantRow } from '../grantFormat.js';
import { ROUTE_COUNTER_COLUMNS, routeCounterRow } from '../routeFormat.js';
import { formatAge, renderFields, renderTable, type Row } from '../format.js';

/**
 * `edgectl local status` as text: the same facts as edgecore's status page, for a terminal on
 * the node. Pure; `now` is the caller's clock, but durations the node measured (how long the
 * link is down) come from the node, so a wrong laptop clock does not distort them.
 */

const NONE = '<none>';

/** `59s`, `2m13s`, `1h05m`, `3d04h`: finer than an age, because "down for" matters to the minute. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return NONE;
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86_400); s -= d * 86_400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d${two(h)}h`;
  if (h > 0) return `${h}h${two(m)}m`;
  if (m > 0) return `${m}m${two(s)}s`;
  return `${s}s`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function linkLine(s: EdgeStatus): string {
  const link = s.link;
  // Several replicas: which one the link is on, and the others it would move to.
  const others = (link.cloudUrls ?? []).filter((u) => u !== link.cloudUrl);
  const replicas = others.length > 0 ? ` (other replicas: ${others.join(', ')})` : '';
  if (link.state === 'connected') {
    const up = link.connectedSince ? (Date.parse(s.generatedAt) - Date.parse(link.connectedSince)) / 1000 : null;
    return `connected${up !== null ? ` for ${formatDuration(up)}` : ''} to ${link.cloudUrl}${replicas}`;
  }
  return `DOWN for ${formatDuration(link.downForSeconds)} (${link.state}) to ${link.cloudUrl}${replicas}`;
}

export function summaryFields(s: EdgeStatus): Array<[string, string]> {
  const h = s.host;
  const fields: Array<[string, string]> = [
    ['Node', s.node],
    ['edgecore', `${s.edgecore.version} (pid ${s.edgecore.pid}, up ${formatDuration(s.edgecore.uptimeSeconds)})`],
    ['Host', `${h.hostname} ${h.os}/${h.arch}, load ${h.loadAverage.join(' ')}, up ${formatDuration(h.uptimeSeconds)}`],
    ['Cloud link', linkLine(s)],
  ];
  if (s.upgrade) fields.push(...upgradeFields(s.upgrade));
  if (s.link.state !== 'connected') {
    fields.push(['Down since', s.link.downSince ?? NONE]);
    fields.push(['Last connected', s.link.lastConnectedAt ?? 'never since edgecore started']);
  }
  if (s.link.lastError) fields.push(['Last error', s.link.lastError]);
  fields.push(...identityFields(s));
  fields.push(
    ['Synced revision', `${s.sync.lastRevision} (epoch ${s.sync.epoch})`],
    ['Queued for cloud', `${s.outbox.depth} waiting, ${s.outbox.dropped} dropped (spool limits or unreadable)`],
    ['Disk', h.disk ? `${formatBytes(h.disk.availableBytes)} free of ${formatBytes(h.disk.totalBytes)} (${h.disk.path})` : 'cannot be read'],
    ['Memory', `${formatBytes(h.memory.availableBytes)} available of ${formatBytes(h.memory.totalBytes)}; edgecore uses ${formatBytes(h.memory.edgecoreRssBytes)}`],
  );
  if (s.mqtt) {
    const rollbacks = s.mqtt.commits?.rollbacks ?? 0;
    // A rolled-back commit is a write the disk refused: the one hint a field engineer needs here.
    const failing = rollbacks > 0 ? `; ${rollbacks} device commits failed (check the disk)` : '';
    const unreadable = s.mqtt.unreadableRows ?? 0;
    const dropped = unreadable > 0 ? `; ${unreadable} stored messages unreadable, dropped (see the log)` : '';
    const queueDrops = s.mqtt.queuedDropped ?? 0;
    const overQueue = queueDrops > 0 ? `; ${queueDrops} queued messages dropped (session queue limit)` : '';
    fields.push(['MQTT broker', `${s.mqtt.url}, ${s.mqtt.clients} clients${failing}${dropped}${overQueue}`]);
    // Settings that widen the broker (anonymous access, plain MQTT off loopback): as loud here as on the page.
    for (const warning of s.mqtt.warnings ?? []) fields.push(['BROKER EXPOSED', warning]);
  }
  return fields;
}

/** What each identity standing asks of the engineer at the node. */
const STANDING_TEXT: Record<string, string> = {
  'valid': 'valid',
  'renew-due': 'renewal due (the node renews it itself)',
  'expired-in-grace': 'EXPIRED: renewing with the cloud (accepted within its grace window)',
  'needs-new-token': 'NEEDS A NEW JOIN TOKEN: create one with `edgectl token create NODE` and restart edgecore with --join-token',
};

export function identityFields(s: EdgeStatus): Array<[string, string]> {
  const id = s.identity;
  if (id === undefined) return [];
  if (id === null) return [['Identity', 'none yet (the node has not joined)']];
  const what = id.mode === 'certificate' ? `certificate ${id.serial ?? NONE}` : 'bearer credential';
  const fields: Array<[string, string]> = [
    ['Identity', `${what}, ${STANDING_TEXT[id.standing] ?? id.standing}`],
    ['Identity expires', id.notAfter ?? 'never'],
  ];
  if (id.renewAt) fields.push(['Renews at', id.renewAt]);
  if (id.lastRenewalError) fields.push(['Renewal error', id.lastRenewalError]);
  return fields;
}

export const LOCAL_WORKLOAD_COLUMNS = ['NAME', 'RUNTIME', 'STATE', 'RESTARTS', 'AGE', 'GENERATION', 'LAST LOG LINE'];

export function localWorkloadRow(w: EdgeStatus['workloads'][number], now: Date): Row {
  const st = w.status;
  const lastLine = w.recentLogs?.at(-1) ?? st?.lastError ?? '';
  return [
    w.name,
    w.runtime,
    st ? `${st.state}${st.ready === false ? ' (not ready)' : ''}` : 'Unknown',
    st ? String(st.restarts) : '-',
    st?.startedAt ? formatAge(st.startedAt, now) : NONE,
    String(w.generation),
    cut(lastLine, 60),
  ];
}

export const LOCAL_DEVICE_COLUMNS = ['NAME', 'ONLINE', 'LAST-SEEN', 'REPORTED'];

export function localDeviceRow(d: NonNullable<EdgeStatus['mqtt']>['devices'][number], now: Date): Row {
  const values = Object.keys(d.reported).sort().map((k) => `${k}=${JSON.stringify(d.reported[k])}`).join(',');
  return [d.name, d.online ? 'yes' : d.mapperError ? cut(`no: ${d.mapperError}`, 60) : 'no', d.lastSeen ? formatAge(d.lastSeen, now) : '<never>', cut(values || NONE, 60)];
}

/** The whole terminal view: summary, workloads, devices, app grants, routes, then each workload's recent log lines. */
export function renderLocalStatus(s: EdgeStatus, now: Date): string {
  const parts = [renderFields(summaryFields(s))];
  parts.push(`\nWORKLOADS (${s.workloads.length})\n`);
  parts.push(s.workloads.length === 0 ? 'No workloads on this node.\n' : renderTable(LOCAL_WORKLOAD_COLUMNS, s.workloads.map((w) => localWorkloadRow(w, now))));
  const devices = s.mqtt?.devices ?? [];
  parts.push(`\nDEVICES (${devices.length})\n`);
  parts.push(devices.length === 0 ? 'No devices on this node.\n' : renderTable(LOCAL_DEVICE_COLUMNS, devices.map((d) => localDeviceRow(d, now))));
  // Absent from an edgecore older than app grants, or with no broker: no section then.
  const grants = s.mqtt?.appGrants;
  if (grants !== undefined) {
    parts.push(`\nAPP GRANTS (${grants.length})\n`);
    parts.push(grants.length === 0 ? 'No workload on this node has an MQTT grant.\n' : renderTable(APP_GRANT_COLUMNS, grants.map(appGrantRow)));
  }
  if (s.routes !== undefined) {
    parts.push(`\nROUTES (${s.routes.length})\n`);
    parts.push(s.routes.length === 0 ? 'No routes on this node.\n' : renderTable(ROUTE_COUNTER_COLUMNS, s.routes.map((r) => routeCounterRow(r.route, r))));
  }
  const withLogs = s.workloads.filter((w) => (w.recentLogs?.length ?? 0) > 0);
  if (withLogs.length > 0) {
    parts.push('\nRECENT LOGS\n');
    for (const w of withLogs) parts.push(`--- ${w.name}\n${w.recentLogs!.map((l) => `  ${l}`).join('\n')}\n`);
  }
  return parts.join('');
}

/** The previous agent version and the last over-the-air upgrade attempt (docs/install.md, "Upgrade"). */
function upgradeFields(u: NonNullable<EdgeStatus['upgrade']>): Array<[string, string]> {
  const fields: Array<[string, string]> = [['Previous version', u.previousVersion ?? NONE]];
  const a = u.lastAttempt;
  if (a) {
    const progress = a.phase === 'Downloading' && a.totalBytes ? ` ${formatBytes(a.bytes ?? 0)} of ${formatBytes(a.totalBytes)}` : '';
    fields.push(['Last upgrade', `${a.version} (${a.upgrade} revision ${a.revision}): ${a.phase}${progress} since ${a.since}: ${a.message}`]);
  }
  return fields;
}
