import Table from 'cli-table3';
import YAML from 'yaml';
import { twinDelta, type App, type Device, type DeviceModel, type Event, type LabelSelector, type Labels, type Node, type PropertyValue, type Workload } from '../protocol/index.js';

/**
 * Pure presentation: turns API objects into table rows and short strings. Every function that
 * depends on the clock takes `now` so tests (and the callers) decide what "now" is.
 */

export type OutputFormat = 'table' | 'json' | 'yaml';
export type Row = string[];

const NONE = '<none>';

/** kubectl-style short age: `45s`, `5m`, `3h`, `2d`. Future times (clock skew) read as `0s`. */
export function formatAge(timestamp: string | null | undefined, now: Date): string {
  if (!timestamp) return NONE;
  const then = Date.parse(timestamp);
  if (Number.isNaN(then)) return '<unknown>';
  const seconds = Math.max(0, Math.floor((now.getTime() - then) / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

/** `a=1,b=2` sorted by key, `<none>` when empty. */
export function formatLabels(labels: Labels | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return NONE;
  return entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/**
 * The selector in the same string form `-l` and `?labelSelector=` accept, so it can be pasted
 * back into a command. An empty selector selects every node: `<all nodes>`.
 */
export function formatSelector(selector: LabelSelector | undefined): string {
  const terms: string[] = [];
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    terms.push(`${k}=${v}`);
  }
  for (const req of selector?.matchExpressions ?? []) {
    switch (req.operator) {
      case 'In': terms.push(`${req.key} in (${(req.values ?? []).join(',')})`); break;
      case 'NotIn': terms.push(`${req.key} notin (${(req.values ?? []).join(',')})`); break;
      case 'Exists': terms.push(req.key); break;
      case 'DoesNotExist': terms.push(`!${req.key}`); break;
    }
  }
  return terms.length === 0 ? '<all nodes>' : terms.join(',');
}

/** Borderless, uncoloured, left-aligned columns like kubectl; trailing padding trimmed. */
export function renderTable(head: string[], rows: Row[]): string {
  const table = new Table({
    head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 3 },
  });
  table.push(...rows);
  return table.toString().split('\n').map((line) => line.trimEnd()).join('\n') + '\n';
}

/** `Key:  value` lines with the values aligned, for single-object views. */
export function renderFields(fields: Array<[string, string]>): string {
  const width = Math.max(...fields.map(([k]) => k.length)) + 2;
  return fields.map(([k, v]) => `${(k + ':').padEnd(width)}${v}`.trimEnd()).join('\n') + '\n';
}

/** json/yaml views of any API answer; table views are built per command. */
export function renderData(data: unknown, format: Exclude<OutputFormat, 'table'>): string {
  return format === 'json' ? JSON.stringify(data, null, 2) + '\n' : YAML.stringify(data);
}

// ---- Nodes ----------------------------------------------------------------------------------

export const NODE_COLUMNS = ['NAME', 'STATUS', 'AGE', 'LAST-SEEN', 'VERSION', 'LABELS'];

/** AGE is how long the node has been in its current STATUS (`status.since`). */
export function nodeRow(node: Node, now: Date): Row {
  return [
    node.metadata.name,
    node.status.phase,
    formatAge(node.status.since, now),
    node.status.lastSeen ? formatAge(node.status.lastSeen, now) : '<never>',
    node.status.agent?.version ?? NONE,
    formatLabels(node.metadata.labels),
  ];
}

export function nodeFields(node: Node, now: Date): Array<[string, string]> {
  const agent = node.status.agent;
  return [
    ['Name', node.metadata.name],
    ['Status', `${node.status.phase} for ${formatAge(node.status.since, now)}`],
    ['Last seen', node.status.lastSeen ? `${node.status.lastSeen} (${formatAge(node.status.lastSeen, now)} ago)` : '<never>'],
    ['Labels', formatLabels(node.metadata.labels)],
    ['Version', agent?.version ?? NONE],
    ['OS/Arch', agent ? `${agent.os}/${agent.arch}` : NONE],
    ['Hostname', agent?.hostname ?? NONE],
    ['Acked revision', String(node.status.ackedRevision)],
    ['Created', node.metadata.creationTimestamp ?? NONE],
  ];
}

// ---- Apps -----------------------------------------------------------------------------------

/** What readiness needs to know about one app instance, from app status or from a workload. */
export interface InstanceState {
  state: string;
  generation?: number | undefined;
}

/**
 * An instance is ready when it runs the app's current generation: a Running instance still on
 * an older template is mid-rollout and does not count.
 */
export function countReady(appGeneration: number | undefined, instances: InstanceState[]): string {
  const ready = instances.filter((i) => i.state === 'Running'
    && (appGeneration === undefined || i.generation === undefined || i.generation === appGeneration)).length;
  return `${ready}/${instances.length}`;
}

export function workloadInstance(workload: Workload): InstanceState {
  return { state: workload.status?.state ?? 'Pending', generation: workload.status?.generation };
}

/**
 * READY/BOUND: instances running the current revision over the instances bound to joined nodes
 * (one per node and replica). A node that never joined (Pending) has none, so it is not counted.
 */
export const APP_COLUMNS = ['NAME', 'GENERATION', 'READY/BOUND', 'SELECTOR'];

/** What "up to date" means for a node: the revision the app's rollout targets (docs/rollouts.md), else its generation. */
function currentRevision(app: App): number | undefined {
  return app.status?.revision ?? app.metadata.generation;
}

export function appRow(app: App, instances: InstanceState[]): Row {
  return [
    app.metadata.name,
    String(app.metadata.generation ?? '-'),
    countReady(currentRevision(app), instances),
    formatSelector(app.spec.selector),
  ];
}

export function appFields(app: App, now: Date): Array<[string, string]> {
  const t = app.spec.template;
  const created = app.metadata.creationTimestamp;
  return [
    ['Name', app.metadata.name],
    ['Generation', String(app.metadata.generation ?? '-')],
    ['Labels', formatLabels(app.metadata.labels)],
    ['Selector', formatSelector(app.spec.selector)],
    ['Runtime', t.runtime],
    ['Command', t.runtime === 'process' ? [t.command, ...t.args].join(' ') : [t.image, ...(t.command ?? []), ...(t.args ?? [])].join(' ')],
    ['Restart policy', t.restartPolicy],
    ...(app.status?.rollout ? [
      ['Revision', String(app.status.revision ?? '-')] as [string, string],
      ['Rollout', `${app.status.rollout.phase} (revision ${app.status.rollout.revision}, stable ${app.status.rollout.stableRevision ?? NONE})`] as [string, string],
    ] : []),
    ['Nodes ready', countReady(currentRevision(app), app.status?.nodes ?? [])],
    ['Created', created ? `${created} (${formatAge(created, now)} ago)` : NONE],
  ];
}

export const APP_NODE_COLUMNS = ['NODE', 'STATE', 'RESTARTS', 'GENERATION', 'LAST ERROR'];

export function appNodeRows(app: App): Row[] {
  return (app.status?.nodes ?? []).map((n) => [
    n.node, n.state, String(n.restarts), n.generation === undefined ? '-' : String(n.generation), oneLine(n.lastError),
  ]);
}

// ---- Workloads and events -------------------------------------------------------------------

export const WORKLOAD_COLUMNS = ['NAME', 'NODE', 'APP', 'STATE', 'RESTARTS', 'GENERATION', 'OBSERVED', 'LAST ERROR'];

/** GENERATION is what the cloud wants the node to run; OBSERVED is what the edge last reported. */
export function workloadRow(w: Workload, now: Date): Row {
  return [
    w.metadata.name,
    w.spec.nodeName,
    w.spec.app,
    w.status?.state ?? 'Pending',
    String(w.status?.restarts ?? 0),
    w.status && w.status.generation !== w.spec.generation
      ? `${w.status.generation}->${w.spec.generation}` : String(w.spec.generation),
    w.status ? `${formatAge(w.status.observedAt, now)} ago` : '<never>',
    oneLine(w.status?.lastError),
  ];
}

export const EVENT_COLUMNS = ['AGE', 'NODE', 'TYPE', 'REASON', 'WORKLOAD', 'MESSAGE'];

export function eventRow(e: Event, now: Date): Row {
  return [formatAge(e.spec.time, now), e.spec.node ?? (e.spec.app ? `app/${e.spec.app}` : ''), e.spec.type, e.spec.reason, e.spec.workload ?? '', oneLine(e.spec.message)];
}

// ---- Devices --------------------------------------------------------------------------------

export const DEVICE_MODEL_COLUMNS = ['NAME', 'PROTOCOL', 'PROPERTIES'];

export function deviceModelRow(m: DeviceModel): Row {
  return [m.metadata.name, m.spec.protocol, oneLine(m.spec.properties.map((p) => p.name).join(','), 60)];
}

export const DEVICE_COLUMNS = ['NAME', 'NODE', 'MODEL', 'PROTOCOL', 'ONLINE', 'DESIRED/REPORTED'];

/**
 * ONLINE is `<unknown>` until the edge has reported, `no node` when the device names a node
 * that does not exist (given `nodes`, the names that do); the last column holds the two twin
 * versions.
 */
export function deviceRow(d: Device, nodes?: ReadonlySet<string>): Row {
  return [
    d.metadata.name,
    d.spec.nodeName,
    d.spec.model,
    d.spec.protocol.name,
    !d.status && nodes && !nodes.has(d.spec.nodeName) ? 'no node' : formatOnline(d),
    `${d.spec.desiredVersion}/${d.status ? d.status.twin.version : '-'}`,
  ];
}

function formatOnline(d: Device): string {
  if (!d.status) return '<unknown>';
  if (d.status.online) return 'yes';
  return d.status.offlineReason !== undefined ? `no (${d.status.offlineReason})` : 'no';
}

export function deviceFields(d: Device, now: Date): Array<[string, string]> {
  const lastSeen = d.status?.lastSeen;
  const created = d.metadata.creationTimestamp;
  return [
    ['Name', d.metadata.name],
    ['Node', d.spec.nodeName],
    ['Model', d.spec.model],
    ['Protocol', d.spec.protocol.name],
    ['Online', formatOnline(d)],
    ['Last seen', lastSeen ? `${lastSeen} (${formatAge(lastSeen, now)} ago)` : '<never>'],
    ['Desired version', String(d.spec.desiredVersion)],
    ['Reported version', d.status ? String(d.status.twin.version) : '-'],
    ['Labels', formatLabels(d.metadata.labels)],
    ['Created', created ? `${created} (${formatAge(created, now)} ago)` : NONE],
  ];
}

export const TWIN_COLUMNS = ['PROPERTY', 'DESIRED', 'REPORTED', 'DELTA', 'UNIT', 'UPDATED'];

/**
 * One row per property of the device's model (model order), then any value the model does not
 * list. DELTA is `*` where desired still differs from reported; UPDATED is the age of the
 * newer of the two sections' timestamps.
 */
export function twinRows(d: Device, now: Date): Row[] {
  const desired = d.spec.desired;
  const reported = d.status?.twin.reported ?? {};
  const delta = twinDelta(desired, reported);
  const modelProps = d.spec.modelSpec?.properties ?? [];
  const known = new Set(modelProps.map((p) => p.name));
  const extra = [...new Set([...Object.keys(desired), ...Object.keys(reported)])].filter((k) => !known.has(k)).sort();
  const units = new Map(modelProps.map((p) => [p.name, p.unit]));
  return [...modelProps.map((p) => p.name), ...extra].map((name) => {
    const times = [d.spec.desiredMetadata[name]?.updatedAt, d.status?.twin.metadata[name]?.updatedAt]
      .filter((t): t is string => t !== undefined && !Number.isNaN(Date.parse(t)))
      .sort((a, b) => Date.parse(b) - Date.parse(a));
    return [
      name,
      formatPropertyValue(desired[name]),
      formatPropertyValue(reported[name]),
      Object.prototype.hasOwnProperty.call(delta, name) ? '*' : '',
      units.get(name) ?? '-',
      times[0] ? `${formatAge(times[0], now)} ago` : '-',
    ];
  });
}

export function formatPropertyValue(value: PropertyValue | undefined): string {
  return value === undefined ? '-' : oneLine(String(value), 40);
}

/** Multi-line errors (stack traces, stderr tails) would break table alignment. */
export function oneLine(text: string | null | undefined, max = 120): string {
  if (!text) return '';
  const flat = text.replace(/\s*\n\s*/g, ' | ').trim();
  return flat.length > max ? flat.slice(0, max - 3) + '...' : flat;
}
