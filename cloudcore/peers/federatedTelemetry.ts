import type { Logger } from 'pino';
import type { TelemetrySample } from '../../protocol/index.js';
import type { TelemetryStore } from '../telemetry/telemetryStore.js';
import type { PeerClient, PeerTarget } from './peerClient.js';

/**
 * Device telemetry with several replicas. Samples stay in the telemetry.db of whichever replica
 * held the device's node session when they came (they are many, small and disposable, and must
 * not load etcd); a query asks this replica and every live peer and merges the answers, so any
 * replica answers a device's whole history. A peer that fails or is slow is left out of that one
 * answer (and logged), never failing it: telemetry is best effort, the rest is still true.
 */

export interface FederatedTelemetryOptions {
  /** This replica's own store (telemetry.db). */
  local: TelemetryStore;
  /** The other live replicas (the registry), asked on every query and drop. */
  peers(): PeerTarget[];
  client: PeerClient;
  log: Logger;
}

/** Order of a sample: its time, then its values as a canonical text (the SQLite store's order). */
interface Keyed { ms: number; t: string; body: string; sample: TelemetrySample }

function canonicalBody(values: TelemetrySample['values']): string {
  return JSON.stringify(Object.keys(values).sort().map((k) => [k, values[k]]));
}

function compare(a: Keyed, b: Keyed): number {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1;
  if (a.t !== b.t) return a.t < b.t ? -1 : 1;
  return a.body < b.body ? -1 : a.body > b.body ? 1 : 0;
}

/**
 * Merges per-replica answers to one query into that query's answer: oldest first, a sample that
 * several replicas hold (an edge's outbox resent it after its session moved) once, and then, as
 * each store answers, the first `limit` after `since` when it is given, else the newest `limit`.
 * Each input must be its replica's answer to the same query, so nothing the merge needs is missing.
 * A time that does not parse sorts last (it is newer than nothing we can name).
 */
export function mergeSamples(answers: readonly (readonly TelemetrySample[])[], query: { since?: string; limit: number }): TelemetrySample[] {
  const seen = new Map<string, Keyed>();
  for (const answer of answers) {
    for (const sample of answer) {
      const parsed = Date.parse(sample.t);
      const keyed: Keyed = { ms: Number.isNaN(parsed) ? Number.POSITIVE_INFINITY : parsed, t: sample.t, body: canonicalBody(sample.values), sample };
      const identity = `${Number.isNaN(parsed) ? `t:${sample.t}` : parsed}\u0000${keyed.body}`;
      if (!seen.has(identity)) seen.set(identity, keyed);
    }
  }
  const ordered = [...seen.values()].sort(compare);
  const kept = query.since !== undefined ? ordered.slice(0, query.limit) : ordered.slice(Math.max(0, ordered.length - query.limit));
  return kept.map((k) => k.sample);
}

export class FederatedTelemetry implements TelemetryStore {
  constructor(private readonly opts: FederatedTelemetryOptions) {}

  /** Samples arriving over this replica's links are kept here. */
  append(device: string, samples: TelemetrySample[]): Promise<void> {
    return this.opts.local.append(device, samples);
  }

  async query(device: string, query: { since?: string; limit: number }): Promise<TelemetrySample[]> {
    const peers = this.opts.peers();
    const [own, ...remote] = await Promise.allSettled([
      this.opts.local.query(device, query),
      ...peers.map((peer) => this.opts.client.telemetry(peer, device, query)),
    ]);
    // This replica's own store failing is a real failure, not a missing peer.
    if (own!.status === 'rejected') throw own!.reason;
    const answers = [own!.value];
    remote.forEach((result, i) => {
      if (result.status === 'fulfilled') answers.push(result.value);
      else this.opts.log.warn({ device, replica: peers[i]!.id, err: (result.reason as Error).message }, 'telemetry of one replica left out of the answer');
    });
    return mergeSamples(answers, query);
  }

  /**
   * A deleted device's samples go from every replica. A peer that cannot be reached keeps its
   * samples until they age out (the store's age bound); that is logged, and the delete stands.
   */
  async drop(device: string): Promise<void> {
    const peers = this.opts.peers();
    const [own, ...remote] = await Promise.allSettled([
      this.opts.local.drop(device),
      ...peers.map((peer) => this.opts.client.dropTelemetry(peer, device)),
    ]);
    remote.forEach((result, i) => {
      if (result.status === 'rejected') this.opts.log.warn({ device, replica: peers[i]!.id, err: (result.reason as Error).message }, 'could not drop a deleted device\'s telemetry at one replica (it ages out there)');
    });
    if (own!.status === 'rejected') throw own!.reason;
  }

  /** Closes the local store only: the peers' are theirs. */
  close(): Promise<void> {
    return this.opts.local.close();
  }
}
