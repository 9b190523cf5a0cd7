import {
  matchesSelector, WorkloadStateSchema,
  type AnyObject, type LabelSelector, type Labels, type Node, type NodePhase, type WorkloadState,
} from '../../../protocol/index.js';
import type { LinkQualityView } from '../../hub/linkQuality.js';
import type { NodeStatsSeries } from '../../telemetry/nodeStatsHistory.js';
import type { WatchEventType } from '../../store/store.js';

/**
 * The fleet at a glance (`GET /fleet`): one row per node with its workloads counted by state,
 * its devices and its link quality, filtered, sorted and paginated on the server so a page of
 * 10,000 nodes stays small. `FleetIndex` is kept current from the store's watch (no store
 * reads per request); `queryFleet` is a pure function of the index, the query and the hub's
 * live view.
 */

export const FLEET_SORT_KEYS = ['name', 'status', 'since', 'lastSeen', 'version', 'os', 'arch', 'workloads', 'notRunning', 'devices', 'reconnects', 'rtt'] as const;
export type FleetSortKey = typeof FLEET_SORT_KEYS[number];
export const WORKLOAD_STATES: readonly WorkloadState[] = WorkloadStateSchema.options;

export interface FleetQuery {
  labelSelector?: LabelSelector;
  status?: NodePhase;
  /** Case-insensitive part of the node name. */
  search?: string;
  sort: FleetSortKey;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

/** What the hub knows live (memory only); absent in an API without a hub. */
export interface FleetLinks {
  quality: { view(node: string, now: number): LinkQualityView | null };
  stats: { series(node: string, sinceMs: number, now: number): NodeStatsSeries };
  /** Time of the last frame from a connected node (ms), undefined when not connected. */
  liveLastSeen(node: string): number | undefined;
}

export type StateCounts = Partial<Record<WorkloadState, number>>;

export interface FleetRow {
  name: string;
  labels: Labels;
  phase: NodePhase;
  since: string;
  lastSeen: string | null;
  agent: { version: string; os: string; arch: string; hostname: string } | null;
  workloads: { total: number; byState: StateCounts };
  devices: { total: number; online: number };
  link: (LinkQualityView & { connected: boolean }) | null;
}

export interface FleetPage {
  items: FleetRow[];
  /** Nodes matching the filters (all pages). */
  matched: number;
  offset: number;
  limit: number;
  totals: {
    nodes: number;
    byPhase: Record<NodePhase, number>;
    workloads: { total: number; byState: StateCounts };
    devices: { total: number; online: number };
  };
  /** Store revision the index reflects: watch from here to hear of the next change. */
  resourceVersion: number;
}

interface NodeInfo {
  name: string;
  labels: Labels;
  phase: NodePhase;
  since: string;
  lastSeen: string | null;
  agent: Node['status']['agent'];
}

function countUp(counts: StateCounts, state: WorkloadState, by: number): void {
  const next = (counts[state] ?? 0) + by;
  if (next === 0) delete counts[state];
  else counts[state] = next;
}

/** Per-node aggregates kept current from store events (Node, Workload, Device). */
export class FleetIndex {
  revision = 0;
  readonly nodes = new Map<string, NodeInfo>();
  private readonly workloadOf = new Map<string, { node: string; state: WorkloadState }>();
  private readonly workloadsByNode = new Map<string, { total: number; byState: StateCounts }>();
  private readonly deviceOf = new Map<string, { node: string; online: boolean }>();
  private readonly devicesByNode = new Map<string, { total: number; online: number }>();
  readonly workloadTotals = { total: 0, byState: {} as StateCounts };
  readonly deviceTotals = { total: 0, online: 0 };

  apply(type: WatchEventType, object: AnyObject, revision?: number): void {
    if (revision !== undefined && revision > this.revision) this.revision = revision;
    const name = object.metadata.name;
    switch (object.kind) {
      case 'Node':
        if (type === 'DELETED') this.nodes.delete(name);
        else {
          this.nodes.set(name, {
            name, labels: object.metadata.labels ?? {}, phase: object.status.phase, since: object.status.since,
            lastSeen: object.status.lastSeen, agent: object.status.agent,
          });
        }
        return;
      case 'Workload':
        this.setWorkload(name, type === 'DELETED' ? undefined : { node: object.spec.nodeName, state: object.status?.state ?? 'Pending' });
        return;
      case 'Device':
        this.setDevice(name, type === 'DELETED' ? undefined : { node: object.spec.nodeName, online: object.status?.online ?? false });
        return;
      default:
    }
  }

  workloadsOn(node: string): { total: number; byState: StateCounts } {
    return this.workloadsByNode.get(node) ?? { total: 0, byState: {} };
  }

  devicesOn(node: string): { total: number; online: number } {
    return this.devicesByNode.get(node) ?? { total: 0, online: 0 };
  }

  private setWorkload(name: string, next: { node: string; state: WorkloadState } | undefined): void {
    const previous = this.workloadOf.get(name);
    if (previous) {
      const counts = this.workloadsByNode.get(previous.node)!;
      counts.total--;
      countUp(counts.byState, previous.state, -1);
      if (counts.total === 0) this.workloadsByNode.delete(previous.node);
      this.workloadTotals.total--;
      countUp(this.workloadTotals.byState, previous.state, -1);
    }
    if (!next) {
      this.workloadOf.delete(name);
      return;
    }
    this.workloadOf.set(name, next);
    let counts = this.workloadsByNode.get(next.node);
    if (!counts) this.workloadsByNode.set(next.node, counts = { total: 0, byState: {} });
    counts.total++;
    countUp(counts.byState, next.state, 1);
    this.workloadTotals.total++;
    countUp(this.workloadTotals.byState, next.state, 1);
  }

  private setDevice(name: string, next: { node: string; online: boolean } | undefined): void {
    const previous = this.deviceOf.get(name);
    if (previous) {
      const counts = this.devicesByNode.get(previous.node)!;
      counts.total--;
      if (previous.online) counts.online--;
      if (counts.total === 0) this.devicesByNode.delete(previous.node);
      this.deviceTotals.total--;
      if (previous.online) this.deviceTotals.online--;
    }
    if (!next) {
      this.deviceOf.delete(name);
      return;
    }
    this.deviceOf.set(name, next);
    let counts = this.devicesByNode.get(next.node);
    if (!counts) this.devicesByNode.set(next.node, counts = { total: 0, online: 0 });
    counts.total++;
    this.deviceTotals.total++;
    if (next.online) { counts.online++; this.deviceTotals.online++; }
  }
}

/** What a page follows on `GET /fleet/changes`: one node, one app, one device, or the whole fleet. */
export interface ChangeFilter { node?: string; app?: string; device?: string }

/** Kinds the fleet, apps and devices pages show; Events, tokens and configs do not wake them. */
const FLEET_KINDS = new Set(['Node', 'Workload', 'Device', 'App', 'Rollout', 'AppRevision']);

/**
 * Whether a stored change concerns a page: for a node, the Node and what is bound to it
 * (workloads, devices, events); for an app, the App, its Rollout, revisions and workloads;
 * for a device, the Device. Structural on `spec`, so kinds added later (rollouts) fit.
 */
export function concernsChange(filter: ChangeFilter, object: { kind: string; metadata: { name: string }; spec?: unknown }): boolean {
  const spec = (typeof object.spec === 'object' && object.spec !== null ? object.spec : {}) as { nodeName?: unknown; node?: unknown; app?: unknown };
  const name = object.metadata.name;
  if (filter.node !== undefined) {
    return (object.kind === 'Node' && name === filter.node) || spec.nodeName === filter.node || (object.kind === 'Event' && spec.node === filter.node);
  }
  if (filter.app !== undefined) {
    return ((object.kind === 'App' || object.kind === 'Rollout') && name === filter.app) || spec.app === filter.app;
  }
  if (filter.device !== undefined) return object.kind === 'Device' && name === filter.device;
  return FLEET_KINDS.has(object.kind);
}

/** Live view of a node: the hub's last frame beats the throttled lastSeen in the store. */
function effectiveLastSeen(info: NodeInfo, links: FleetLinks | undefined): string | null {
  const live = links?.liveLastSeen(info.name);
  if (live === undefined) return info.lastSeen;
  const liveIso = new Date(live).toISOString();
  return info.lastSeen !== null && info.lastSeen > liveIso ? info.lastSeen : liveIso;
}

type SortValue = string | number;

/** The sort key of one node; nulls sort last in ascending order. */
function sortValue(key: FleetSortKey, info: NodeInfo, index: FleetIndex, links: FleetLinks | undefined, now: number): SortValue | null {
  switch (key) {
    case 'name': return info.name;
    case 'status': return info.phase;
    case 'since': return info.since;
    case 'lastSeen': return effectiveLastSeen(info, links);
    case 'version': return info.agent?.version ?? null;
    case 'os': return info.agent?.os ?? null;
    case 'arch': return info.agent?.arch ?? null;
    case 'workloads': return index.workloadsOn(info.name).total;
    case 'notRunning': {
      const w = index.workloadsOn(info.name);
      return w.total - (w.byState.Running ?? 0);
    }
    case 'devices': return index.devicesOn(info.name).total;
    case 'reconnects': return links?.quality.view(info.name, now)?.reconnectsLastHour ?? null;
    case 'rtt': return links?.quality.view(info.name, now)?.rttMs ?? null;
  }
}

function compareValues(a: SortValue | null, b: SortValue | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : 1;
}

export function fleetRow(info: NodeInfo, index: FleetIndex, links: FleetLinks | undefined, now: number): FleetRow {
  const live = links?.liveLastSeen(info.name);
  const quality = links?.quality.view(info.name, now) ?? null;
  const workloads = index.workloadsOn(info.name);
  return {
    name: info.name,
    labels: info.labels,
    phase: info.phase,
    since: info.since,
    lastSeen: effectiveLastSeen(info, links),
    agent: info.agent,
    workloads: { total: workloads.total, byState: { ...workloads.byState } },
    devices: { ...index.devicesOn(info.name) },
    link: quality ? { ...quality, connected: live !== undefined } : null,
  };
}

export function queryFleet(index: FleetIndex, query: FleetQuery, links: FleetLinks | undefined, now: number): FleetPage {
  const byPhase: Record<NodePhase, number> = { Ready: 0, Offline: 0, Pending: 0 };
  const search = query.search?.toLowerCase();
  const matched: { info: NodeInfo; key: SortValue | null }[] = [];
  for (const info of index.nodes.values()) {
    byPhase[info.phase]++;
    if (query.status !== undefined && info.phase !== query.status) continue;
    if (search && !info.name.includes(search)) continue;
    if (query.labelSelector && !matchesSelector(query.labelSelector, info.labels)) continue;
    matched.push({ info, key: query.sort === 'name' ? null : sortValue(query.sort, info, index, links, now) });
  }
  const direction = query.order === 'desc' ? -1 : 1;
  matched.sort((a, b) => {
    // Nulls stay last either way; ties fall back to the name so pages never overlap.
    const byKey = a.key === null || b.key === null ? compareValues(a.key, b.key) : direction * compareValues(a.key, b.key);
    if (byKey !== 0) return byKey;
    return (query.sort === 'name' ? direction : 1) * compareValues(a.info.name, b.info.name);
  });
  const page = matched.slice(query.offset, query.offset + query.limit);
  return {
    items: page.map(({ info }) => fleetRow(info, index, links, now)),
    matched: matched.length,
    offset: query.offset,
    limit: query.limit,
    totals: {
      nodes: index.nodes.size,
      byPhase,
      workloads: { total: index.workloadTotals.total, byState: { ...index.workloadTotals.byState } },
      devices: { ...index.deviceTotals },
    },
    resourceVersion: index.revision,
  };
}
