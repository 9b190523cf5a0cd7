import type { EdgeDeviceStatus, EdgeHostStatus, EdgeIdentityStatus, EdgeLinkStatus, EdgeStatus, EdgeWorkloadStatus } from '../../protocol/edgeStatus.js';
import type { LinkPhase, LinkStats } from '../link/cloudLink.js';

/**
 * Builds the `/status` answer (protocol/edgeStatus.ts) from the agent's parts. Pure apart from
 * reading the workloads' logs, so what the field engineer sees is decided here, in one place:
 * no template env, no credentials, no password in the cloud URL.
 */

/** When the link came up and went down, from its phase events (CloudLink keeps only downSince). */
export class LinkTimes {
  connectedSince: number | null = null;
  lastConnectedAt: number | null = null;

  onPhase(phase: LinkPhase, now = Date.now()): void {
    if (phase === 'connected') {
      this.connectedSince = now;
      this.lastConnectedAt = now;
    } else if (this.connectedSince !== null) {
      // It was up until now.
      this.lastConnectedAt = now;
      this.connectedSince = null;
    }
  }
}

export interface LinkView {
  phase: LinkPhase;
  /** The replica URL the link is on now (or trying). */
  cloudUrl?: string;
  downSince: number | null;
  lastError: string | null;
  stats: LinkStats;
}

export interface StatusParts {
  node: string;
  version: string;
  /** The configured cloud URL(s), as the setting gave them (comma-joined). */
  cloudUrl: string;
  /** The configured replicas' URLs; absent: `cloudUrl` is the only one. */
  cloudUrls?: readonly string[];
  /** When this edgecore process started (ms): before any link exists, the link is down since then. */
  startedAt: number;
  now: number;
  pid: number;
  /** undefined until the node has joined and the link was created. */
  link: LinkView | undefined;
  linkTimes: LinkTimes;
  joinError: string | null;
  /** null (or absent) until the node has an identity. */
  identity?: EdgeIdentityStatus | null;
  sync: { epoch: string; lastRevision: number };
  outbox: { depth: number; dropped: number; oldestSeq: number | null };
  mqtt: EdgeStatus['mqtt'];
  workloads: Omit<EdgeWorkloadStatus, 'recentLogs'>[];
  host: EdgeHostStatus;
  upgrade?: EdgeStatus['upgrade'];
  routes?: EdgeStatus['routes'];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** `http://user:secret@host/` → `http://host/`: a URL may carry a password; the page must not. */
export function withoutUserInfo(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

export function linkStatus(parts: Pick<StatusParts, 'link' | 'linkTimes' | 'joinError' | 'startedAt' | 'now' | 'cloudUrl' | 'cloudUrls'>): EdgeLinkStatus {
  const { link, linkTimes, now } = parts;
  const state = link?.phase ?? (parts.joinError ? 'join-failed' : 'disconnected');
  const connected = state === 'connected';
  // No link object yet (joining, or no credential): down since this edgecore started.
  const downSince = connected ? null : (link ? link.downSince : parts.startedAt);
  const configured = parts.cloudUrls ?? [parts.cloudUrl];
  return {
    // Before the link exists (joining): the first configured URL, where it starts.
    cloudUrl: withoutUserInfo(link?.cloudUrl ?? configured[0] ?? parts.cloudUrl),
    cloudUrls: configured.map(withoutUserInfo),
    state,
    downSince: iso(downSince),
    downForSeconds: downSince === null ? null : Math.max(0, Math.round((now - downSince) / 1000)),
    connectedSince: connected ? iso(linkTimes.connectedSince ?? now) : null,
    lastConnectedAt: connected ? iso(now) : iso(linkTimes.lastConnectedAt),
    lastError: link?.lastError ?? parts.joinError,
    stats: link ? { ...link.stats } : null,
  };
}

export function buildEdgeStatus(parts: StatusParts): EdgeStatus {
  return {
    node: parts.node,
    version: parts.version,
    generatedAt: new Date(parts.now).toISOString(),
    edgecore: {
      version: parts.version, pid: parts.pid, startedAt: new Date(parts.startedAt).toISOString(),
      uptimeSeconds: Math.round((parts.now - parts.startedAt) / 1000),
    },
    host: parts.host,
    link: linkStatus(parts),
    identity: parts.identity ?? null,
    sync: parts.sync,
    outbox: parts.outbox,
    mqtt: parts.mqtt,
    workloads: parts.workloads.map((w) => ({ name: w.name, generation: w.generation, runtime: w.runtime, status: w.status })),
    ...(parts.upgrade ? { upgrade: parts.upgrade } : {}),
    ...(parts.routes ? { routes: parts.routes } : {}),
  };
}

/** Longest log line shown on the page; the full log is one `edgectl logs` away. */
export const MAX_LOG_LINE_CHARS = 400;

/** Adds each workload's last `lines` log lines; a log that cannot be read shows none. */
export async function withRecentLogs(
  status: EdgeStatus, readLogs: (name: string, tail: number) => Promise<string[]>, lines: number,
): Promise<EdgeStatus> {
  const workloads = await Promise.all(status.workloads.map(async (w) => {
    const recent = await readLogs(w.name, lines).catch(() => [] as string[]);
    return { ...w, recentLogs: recent.slice(-lines).map((l) => (l.length > MAX_LOG_LINE_CHARS ? `${l.slice(0, MAX_LOG_LINE_CHARS)}…` : l)) };
  }));
  return { ...status, workloads };
}

/**
 * Log tails for the page, re-read at most every `ttlMs` per workload: the page polls every few
 * seconds, possibly from several browsers, and reading a tail reads the capped log files.
 */
export class LogTailCache {
  private readonly entries = new Map<string, { at: number; lines: Promise<string[]> }>();

  constructor(private readonly read: (name: string, tail: number) => Promise<string[]>, private readonly ttlMs: number, private readonly now = Date.now) {}

  tail(name: string, lines: number): Promise<string[]> {
    const key = `${name}\0${lines}`;
    const hit = this.entries.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.lines;
    const fresh = this.read(name, lines).catch(() => [] as string[]);
    this.entries.set(key, { at: this.now(), lines: fresh });
    return fresh;
  }

  /** Drops entries of workloads no longer on the node. */
  retain(names: ReadonlySet<string>): void {
    for (const key of this.entries.keys()) if (!names.has(key.split('\0')[0]!)) this.entries.delete(key);
  }
}
