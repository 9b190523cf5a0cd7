import type { Logger } from 'pino';
import type { Node } from '../../protocol/index.js';
import { FencedError, type Store, type WriteGuard } from '../store/store.js';
import { updateNodeStatus } from '../store/readModifyWrite.js';

/**
 * Node lifecycle: marks nodes Offline when no session holds them for longer than the
 * heartbeat window (e.g. after a cloudcore restart, nodes still recorded Ready that never came
 * back), and trims each node's reported events to a bounded history. Never evicts workloads.
 */

/**
 * Pure: which nodes should now be marked Offline: Ready, held by no link, and silent for the
 * window (lastSeen is refreshed while linked, every minute up to 3,000 links per replica). The window matters with
 * several replicas: a node whose replica just stopped is on its way to another one.
 */
export function nodesGoneOffline(nodes: Node[], isConnected: (name: string) => boolean, now: number, offlineAfterMs: number, startedAt: number): string[] {
  // Give every edge one full window after our own start to reconnect before judging it.
  if (now - startedAt < offlineAfterMs) return [];
  const silent = (n: Node) => n.status.lastSeen === null || !(now - Date.parse(n.status.lastSeen) < offlineAfterMs);
  return nodes
    .filter((n) => n.status.phase === 'Ready' && !isConnected(n.metadata.name) && silent(n))
    .map((n) => n.metadata.name);
}

export interface NodeLifecycleOptions {
  store: Store;
  log: Logger;
  isConnected: (node: string) => boolean;
  /**
   * With several replicas: the guard under which a node may be marked Offline (no replica holds
   * its link), checked in the write itself, so a link opened on another replica since the check
   * is never overwritten.
   */
  offlineGuard?: (node: string) => WriteGuard;
  offlineAfterMs: number;
  /** Events kept per node. */
  maxEventsPerNode?: number;
  intervalMs?: number;
}

export class NodeLifecycle {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private ticking: Promise<void> = Promise.resolve();

  constructor(private readonly opts: NodeLifecycleOptions) {}

  start(): void {
    this.timer = setInterval(() => { this.ticking = this.tick(); }, this.opts.intervalMs ?? 10_000);
    this.timer.unref();
  }

  async tick(): Promise<void> {
    const { store, log } = this.opts;
    try {
      const { items } = await store.list('Node');
      for (const name of nodesGoneOffline(items, this.opts.isConnected, Date.now(), this.opts.offlineAfterMs, this.startedAt)) {
        const nowIso = new Date().toISOString();
        const guarded = this.opts.offlineGuard ? store.guarded(this.opts.offlineGuard(name)) : store;
        try {
          await updateNodeStatus(guarded, name, (n) => (n.status.phase === 'Ready' && !this.opts.isConnected(name)
            ? { ...n.status, phase: 'Offline', since: nowIso } : undefined));
        } catch (err) {
          if (err instanceof FencedError && this.opts.offlineGuard) continue; // its link opened on a replica meanwhile
          throw err;
        }
        log.info({ node: name }, 'node marked Offline (no heartbeat); its workloads stay bound');
      }
      await this.trimEvents();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'node lifecycle pass failed');
    }
  }

  private async trimEvents(): Promise<void> {
    const max = this.opts.maxEventsPerNode ?? 500;
    const { items } = await this.opts.store.list('Event');
    const byNode = new Map<string, typeof items>();
    for (const e of items) {
      // The cloud's own (rollout) events carry an app instead of a node; they share one bound.
      const source = e.spec.node ?? `app:${e.spec.app ?? ''}`;
      const list = byNode.get(source) ?? [];
      list.push(e);
      byNode.set(source, list);
    }
    for (const list of byNode.values()) {
      if (list.length <= max) continue;
      list.sort((a, b) => (a.metadata.resourceVersion ?? 0) - (b.metadata.resourceVersion ?? 0));
      for (const e of list.slice(0, list.length - max)) await this.opts.store.delete('Event', e.metadata.name).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
  }
}
