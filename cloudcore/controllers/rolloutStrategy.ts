import type { CountOrPercent, RolloutStrategy, WaveSpec } from '../../protocol/index.js';

/**
 * Pure: an app's rollout strategy with every default filled in, and the numbers it resolves to
 * for a fleet of a given size (wave targets, maxUnavailable, failure threshold), plus the
 * stable node order that decides wave membership.
 */

export interface ResolvedWave {
  /** Cumulative node count reached when this wave is done. */
  target: number;
  approval: boolean;
  minReadySeconds: number;
  failureThreshold: CountOrPercent;
}

export interface ResolvedStrategy {
  type: 'rolling' | 'waves';
  /** undefined: unlimited (waves without maxUnavailable). */
  maxUnavailable: CountOrPercent | undefined;
  waves: WaveSpec[];
  minReadySeconds: number;
  failureThreshold: CountOrPercent;
  autoRollback: boolean;
  offlineWindowSeconds: number;
}

export const DEFAULT_MAX_UNAVAILABLE = '25%';
export const DEFAULT_OFFLINE_WINDOW_SECONDS = 300;

export function resolveStrategy(strategy: RolloutStrategy | undefined): ResolvedStrategy {
  const type = strategy?.type ?? 'rolling';
  return {
    type,
    maxUnavailable: strategy?.maxUnavailable ?? (type === 'rolling' ? DEFAULT_MAX_UNAVAILABLE : undefined),
    waves: type === 'waves' && strategy?.waves ? strategy.waves : [{ percent: 100 }],
    minReadySeconds: strategy?.minReadySeconds ?? 0,
    failureThreshold: strategy?.failureThreshold ?? 0,
    autoRollback: strategy?.autoRollback ?? false,
    offlineWindowSeconds: strategy?.offlineWindowSeconds ?? DEFAULT_OFFLINE_WINDOW_SECONDS,
  };
}

function percentOf(value: string): number {
  return Number.parseFloat(value.slice(0, -1));
}

/** A count, or a percent of `total` rounded up. */
export function resolveCount(value: CountOrPercent, total: number): number {
  return typeof value === 'number' ? value : Math.ceil((percentOf(value) / 100) * total - 1e-9);
}

/** maxUnavailable as a node count: at least 1; the whole fleet when unlimited. */
export function resolveMaxUnavailable(strategy: ResolvedStrategy, fleetSize: number): number {
  if (strategy.maxUnavailable === undefined) return Math.max(1, fleetSize);
  return Math.max(1, resolveCount(strategy.maxUnavailable, fleetSize));
}

/**
 * True when `failed` nodes exceed the threshold: a count, or a percent of the nodes updated
 * so far (failed / updated > percent).
 */
export function thresholdExceeded(threshold: CountOrPercent, failed: number, updated: number): boolean {
  if (typeof threshold === 'number') return failed > threshold;
  return failed > (percentOf(threshold) / 100) * updated + 1e-9;
}

/** Cumulative targets per wave for a fleet of `fleetSize`: non-decreasing, at least 1, the last reaches the fleet. */
export function resolveWaves(strategy: ResolvedStrategy, fleetSize: number): ResolvedWave[] {
  let previous = 0;
  return strategy.waves.map((wave, i) => {
    const last = i === strategy.waves.length - 1;
    const raw = wave.percent !== undefined ? Math.ceil((wave.percent / 100) * fleetSize - 1e-9) : Math.min(wave.count ?? fleetSize, fleetSize);
    const target = last ? fleetSize : Math.min(fleetSize, Math.max(previous, raw, fleetSize > 0 ? 1 : 0));
    previous = target;
    return {
      target,
      approval: wave.approval ?? false,
      minReadySeconds: wave.minReadySeconds ?? strategy.minReadySeconds,
      failureThreshold: wave.failureThreshold ?? strategy.failureThreshold,
    };
  });
}

/** FNV-1a, 32 bit: a stable hash so wave membership survives restarts and does not follow name order. */
export function nodeRankHash(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The fleet in rollout order. Rank by hash, ties by name; a node joining or leaving shifts the
 * wave boundaries by at most one node, so label changes move single nodes only.
 */
export function rolloutOrder(names: readonly string[]): string[] {
  return names
    .map((name) => ({ name, hash: nodeRankHash(name) }))
    .sort((a, b) => a.hash - b.hash || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((n) => n.name);
}
