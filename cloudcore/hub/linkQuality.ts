/**
 * Link quality per node, as the hub sees it: how often the node's link was (re)opened in the
 * last hour and how long a heartbeat round trip takes (measured by the edge, reported on its
 * next ping). Memory only: it describes this cloudcore's recent past, and after a restart every
 * node starts with a clean slate. Pure (the caller passes the clock).
 */

export const LINK_WINDOW_MS = 60 * 60 * 1000;
/** Opens remembered per node; a link flapping faster than this an hour shows as "at least". */
export const MAX_OPENS_KEPT = 200;
/** Weight of a new round trip in the smoothed value (TCP's SRTT uses 1/8). */
const RTT_WEIGHT = 1 / 8;

export interface LinkQualityView {
  /** Sessions opened in the last hour after the first one this cloudcore saw for the node. */
  reconnectsLastHour: number;
  /** True when more opens happened than are remembered: the count is a lower bound. */
  reconnectsCapped: boolean;
  /** Last reported heartbeat round trip, ms (null until the edge reported one). */
  lastRttMs: number | null;
  /** Smoothed round trip, ms. */
  rttMs: number | null;
  /** When the current (or last) session opened, ms since the epoch. */
  connectedAt: number | null;
}

interface NodeLink {
  /** Open times within the window, oldest first. */
  opens: number[];
  /** The first open this process saw is a connect, not a reconnect. */
  firstOpen: number;
  capped: boolean;
  lastRttMs: number | null;
  srttMs: number | null;
}

export class LinkQuality {
  private readonly nodes = new Map<string, NodeLink>();

  /** A session for `node` was opened at `now`. */
  recordOpen(node: string, now: number): void {
    const link = this.nodes.get(node);
    if (!link) {
      this.nodes.set(node, { opens: [now], firstOpen: now, capped: false, lastRttMs: null, srttMs: null });
      return;
    }
    prune(link, now);
    link.opens.push(now);
    if (link.opens.length > MAX_OPENS_KEPT) {
      link.opens.splice(0, link.opens.length - MAX_OPENS_KEPT);
      link.capped = true;
    }
  }

  /** The edge reported the round trip of its last heartbeat. */
  recordRtt(node: string, rttMs: number): void {
    const link = this.nodes.get(node);
    if (!link || !Number.isFinite(rttMs) || rttMs < 0) return;
    link.lastRttMs = rttMs;
    link.srttMs = link.srttMs === null ? rttMs : link.srttMs + RTT_WEIGHT * (rttMs - link.srttMs);
  }

  view(node: string, now: number): LinkQualityView | null {
    const link = this.nodes.get(node);
    if (!link) return null;
    prune(link, now);
    const from = now - LINK_WINDOW_MS;
    const inWindow = link.opens.filter((t) => t >= from).length;
    const reconnects = inWindow - (link.opens[0] === link.firstOpen && link.firstOpen >= from ? 1 : 0);
    return {
      reconnectsLastHour: reconnects,
      reconnectsCapped: link.capped,
      lastRttMs: link.lastRttMs,
      rttMs: link.srttMs === null ? null : Math.round(link.srttMs * 10) / 10,
      connectedAt: link.opens.at(-1) ?? null,
    };
  }

  /** The node was deleted. */
  forget(node: string): void {
    this.nodes.delete(node);
  }
}

function prune(link: NodeLink, now: number): void {
  const from = now - LINK_WINDOW_MS;
  let drop = 0;
  // Keep the newest open even when old: it still tells when the current session began.
  while (drop < link.opens.length - 1 && link.opens[drop]! < from) drop++;
  if (drop > 0) {
    link.opens.splice(0, drop);
    link.capped = false;
  }
}
