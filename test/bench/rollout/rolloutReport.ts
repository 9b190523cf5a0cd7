import { z } from 'zod';
import type { ProcDelta } from '../procStats.js';

/** What one rollout benchmark run measured; printed as a summary and as one JSON line. */
export interface RolloutBenchReport {
  bench: 'rollout';
  nodes: number;
  /** As given (count or percent) and as the controller resolved it. */
  maxUnavailable: string;
  maxUnavailableNodes: number | null;
  minReadySeconds: number;
  startDelayMs: number;
  edgeState: 'memory' | 'sqlite';
  heartbeatSeconds: number;
  machine: { cpus: number; cpuModel: string; memGiB: number; node: string };
  loadAverageStart: number[];
  loadAverageEnd: number[];
  setup: { joinAndConnectMs: number; firstRevisionMs: number };
  rollout: {
    /** PUT of the new template → every simulated edge runs it (edge side). */
    allEdgesRunningMs: number;
    /** PUT → GET /apps/{app}/rollout says Succeeded (polled every pollMs). */
    succeededMs: number;
    pollMs: number;
    /** Nodes assigned the new revision per second (fleet / allEdgesRunning). */
    nodesPerSecond: number;
    /** Highest counts.updating seen while polling (≤ maxUnavailable). */
    widestUpdating: number;
  };
  /** cloudcore child process from the PUT until the store went quiet again. */
  cloud: ProcDelta & { windowMs: number; rssEndMiB: number };
  /** Self time within the rollout window by cloudcore part, when run with --cloud-cpu-prof. */
  cloudProfile: CpuShares | null;
  /** The benchmark process itself (the simulated edges). */
  edges: ProcDelta;
  store: {
    revisionBefore: number;
    revisionAfter: number;
    writes: number;
    writesPerNode: number;
    /** Writes per node by kind and change type, from the store's event log. */
    perNodeByKind: Record<string, number>;
  };
  warnings: string[];
}

export interface CpuShares {
  windowMs: number;
  /** ms of self time per part. */
  ms: Record<string, number>;
}

/** The part of cloudcore a profiled function belongs to, by its file. */
export function cloudPart(name: string): string {
  if (/cloudcore\/controllers\/(rollout|appRevisions|variants)/.test(name)) return 'rollout controller';
  if (/cloudcore\/controllers\/(scheduler|scheduling)/.test(name)) return 'scheduler';
  if (/cloudcore\/controllers\//.test(name)) return 'other controllers';
  if (/cloudcore\/hub\//.test(name)) return 'hub (edge links)';
  if (/cloudcore\/store\//.test(name) || /better-sqlite3/.test(name)) return 'store (SQLite)';
  if (/cloudcore\/api\//.test(name) || /node_modules\/fastify/.test(name)) return 'REST API';
  if (/node_modules\/ws\//.test(name)) return 'WebSocket (ws)';
  if (/node_modules\/zod\//.test(name) || /protocol\//.test(name)) return 'zod / protocol';
  if (/\(garbage collector\)/.test(name)) return 'GC';
  if (/\(idle\)/.test(name)) return 'idle';
  if (/\(program\)/.test(name)) return 'native, no JS stack (program)';
  return 'other (node internals, JSON)';
}

export const CpuProfileSchema = z.object({
  nodes: z.array(z.object({
    id: z.number(),
    callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
    children: z.array(z.number()).optional(),
  })),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
export type CpuProfile = z.infer<typeof CpuProfileSchema>;

/** Parts that cause work; store, JSON and GC time is charged to the nearest of these on the stack. */
const CALLERS = new Set(['rollout controller', 'scheduler', 'other controllers', 'hub (edge links)', 'REST API']);

/**
 * CPU time per cloudcore part within [fromMs, toMs) since the profile started. Each sample is
 * charged to the nearest caller part on its stack (so the store reads and writes the rollout
 * controller makes count as the controller's), else to the part of its own function.
 */
export function cpuShares(profile: CpuProfile, fromMs: number, toMs: number): CpuShares {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const partOf = (id: number) => {
    const f = byId.get(id)?.callFrame;
    return f ? cloudPart(`${f.functionName} ${f.url}`) : 'other (node internals, JSON)';
  };
  const charged = new Map<number, string>();
  const chargeOf = (leaf: number): string => {
    const known = charged.get(leaf);
    if (known) return known;
    let part = partOf(leaf);
    for (let cur: number | undefined = leaf; cur !== undefined; cur = parent.get(cur)) {
      const p = partOf(cur);
      if (CALLERS.has(p)) { part = p; break; }
    }
    charged.set(leaf, part);
    return part;
  };
  const us: Record<string, number> = {};
  let t = 0;
  let windowUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t / 1000 < fromMs || t / 1000 >= toMs) return;
    windowUs += delta;
    const part = chargeOf(id);
    us[part] = (us[part] ?? 0) + delta;
  });
  const ms = Object.fromEntries(Object.entries(us).sort(([, a], [, b]) => b - a).map(([k, v]) => [k, Math.round(v / 1000)]));
  return { windowMs: Math.round(windowUs / 1000), ms };
}

/** `{Workload: {MODIFIED: 20000}}` over `nodes` → `{'Workload MODIFIED': 2}`, biggest first. */
export function perNode(byKind: Record<string, Record<string, number>>, nodes: number): Record<string, number> {
  const flat: [string, number][] = [];
  for (const [kind, types] of Object.entries(byKind)) {
    for (const [type, n] of Object.entries(types)) flat.push([`${kind} ${type}`, Math.round((n / nodes) * 1000) / 1000]);
  }
  return Object.fromEntries(flat.sort(([, a], [, b]) => b - a));
}

const f = (x: number, d = 1) => x.toFixed(d);

export function summaryText(r: RolloutBenchReport): string {
  const lines = [
    `== EdgeFleet rollout benchmark: ${r.nodes} simulated nodes (${r.edgeState} edge state, heartbeat ${r.heartbeatSeconds} s), `
      + `rolling, maxUnavailable ${r.maxUnavailable}${r.maxUnavailableNodes !== null ? ` = ${r.maxUnavailableNodes} nodes` : ''}, `
      + `minReadySeconds ${r.minReadySeconds}, start delay ${r.startDelayMs} ms`,
    `   machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${f(r.machine.memGiB)} GiB, node ${r.machine.node}; `
      + `load average at start ${r.loadAverageStart.join(' ')}, at end ${r.loadAverageEnd.join(' ')}`,
    `setup: join + connect ${f(r.setup.joinAndConnectMs / 1000, 2)} s; first revision (all at once) on every node after ${f(r.setup.firstRevisionMs / 1000, 2)} s`,
    'rolling update to a new revision:',
    `  every edge runs it after ${f(r.rollout.allEdgesRunningMs / 1000, 2)} s (${f(r.rollout.nodesPerSecond, 0)} nodes/s); `
      + `rollout Succeeded after ${f(r.rollout.succeededMs / 1000, 2)} s (polled every ${r.rollout.pollMs} ms)`,
    `  widest updating count seen: ${r.rollout.widestUpdating}`,
    `  cloudcore: CPU ${f(r.cloud.cpuSeconds, 2)} s over ${f(r.cloud.windowMs / 1000, 1)} s (${f(r.cloud.cpuPercentOfOneCore)} % of one core), `
      + `RSS ${f(r.cloud.rssBeforeMiB)} → ${f(r.cloud.rssAfterMiB)} MiB`,
  ];
  if (r.cloudProfile) {
    lines.push(`  cloudcore CPU by part, store/JSON/GC time charged to its caller (profile window ${r.cloudProfile.windowMs} ms):`);
    for (const [part, ms] of Object.entries(r.cloudProfile.ms)) lines.push(`    ${String(ms).padStart(7)} ms  ${part}`);
    lines.push(`  rollout controller CPU: ${f((r.cloudProfile.ms['rollout controller'] ?? 0) / 1000, 2)} s`);
  }
  lines.push(
    `  bench process (edges): CPU ${f(r.edges.cpuSeconds, 2)} s, RSS ${f(r.edges.rssAfterMiB)} MiB`,
    `  store: ${r.store.writes} writes (revision ${r.store.revisionBefore} → ${r.store.revisionAfter}) = ${f(r.store.writesPerNode, 2)} per node:`,
    ...Object.entries(r.store.perNodeByKind).map(([k, n]) => `    ${f(n, 3).padStart(7)}  ${k}`),
  );
  for (const w of r.warnings) lines.push(`WARNING: ${w}`);
  return lines.join('\n');
}
