import type { WriteGuard } from '../store/store.js';

/** What the leader's election decides from what it sees, apart from any I/O (unit-tested alone). */

export const LEADER_KEY = 'cluster/leader';
export const DEFAULT_LEADER_LEASE_SECONDS = 5;

/** The guard every leader-only write carries: the leader key still exists with the create revision this term began at. */
export function leaderGuard(replicaId: string, createRevision: number): WriteGuard {
  return { key: LEADER_KEY, createRevision, lostMessage: `this replica is no longer the leader (replica ${replicaId})` };
}

export interface LeaderKeyState {
  value: string;
  createRevision: number;
}

export interface LeaderTerm {
  replicaId: string;
  createRevision: number;
}

/**
 * Whether a change to the leader key ends this replica's term: undefined while the key is still
 * the one this term created, else why not. A put of the same value at the same create revision
 * (a duplicate event, which etcd 3.4.23 can send) changes nothing.
 */
export function leaderKeyEndsTerm(term: LeaderTerm, key: LeaderKeyState | undefined): string | undefined {
  if (!key) return 'the leader key was deleted (its lease expired or was revoked)';
  if (key.createRevision !== term.createRevision) return `the leader key was created again (now held by replica ${key.value})`;
  if (key.value !== term.replicaId) return `the leader key now names replica ${key.value}`;
  return undefined;
}

/**
 * A stalled event loop: a timer due `expectedMs` after the previous tick fired `actualMs` after it.
 * A stall longer than a third of the lease TTL means keepalives (TTL/3 apart) may have missed
 * their slot and the lease may have lapsed unseen; the leader must assume it did.
 */
export function stallEndsTerm(expectedMs: number, actualMs: number, ttlSeconds: number): string | undefined {
  const stall = actualMs - expectedMs;
  const limit = (ttlSeconds * 1000) / 3;
  if (stall <= limit) return undefined;
  return `the event loop stalled for ${Math.round(stall)} ms (more than a third of the ${ttlSeconds} s leader lease): the lease may have lapsed unseen`;
}

/** How often the leader checks for a stall: often enough to see one of TTL/3 well before the TTL ends. */
export function stallCheckEveryMs(ttlSeconds: number): number {
  return Math.max(20, Math.min(250, (ttlSeconds * 1000) / 12));
}
