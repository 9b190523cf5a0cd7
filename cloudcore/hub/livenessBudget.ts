/**
 * Pure: which linked nodes get their liveness (lastSeen, acked revision) written this pass: those
 * not written for a minute, the longest unwritten first, at most `budget` of them. Over etcd each
 * is a consensus round trip: 30,000 links over 3 replicas wrote 500 txns/s, half of what etcd
 * committed on the benchmark machine, starving real changes. Those past the budget wait for a
 * later pass; whether a node is held is its session claim's business, not its stored lastSeen's.
 */
export function livenessDue(linked: readonly { node: string; lastSeen: number }[], persisted: ReadonlyMap<string, number>, budget: number): string[] {
  const due = linked.filter((s) => s.lastSeen - (persisted.get(s.node) ?? 0) >= LIVENESS_MIN_INTERVAL_MS);
  due.sort((a, b) => (persisted.get(a.node) ?? 0) - (persisted.get(b.node) ?? 0));
  return due.slice(0, Math.max(0, budget)).map((s) => s.node);
}

/** A node's stored lastSeen is refreshed at most this often. */
export const LIVENESS_MIN_INTERVAL_MS = 60_000;
