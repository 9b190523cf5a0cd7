import { summarizeLatencies } from '../figures.js';
import { round } from '../procStats.js';
import type { ContainerPhaseResult } from './containerPhase.js';
import type { MemoryProbeReport, ProbeDelta } from './memoryProbes.js';
import type { ColdStartSample, IdleFigures, UpdateSample } from './phases.js';

/** The edge benchmark's result: pure shaping and the human summary. */

export const TARGETS = { idleRssMiB: 60, coldStartAllRunningMs: 1000 } as const;

export interface Spread { count: number; min: number; p50: number; max: number }

/** min/p50/max of the non-null values (nearest rank). */
export function spread(values: readonly (number | null)[]): Spread | null {
  const present = values.filter((v): v is number => v !== null);
  if (present.length === 0) return null;
  const s = summarizeLatencies(present);
  return { count: s.count, min: round(s.min, 1), p50: round(s.p50, 1), max: round(s.max, 1) };
}

export interface ColdStartSeries {
  name: string;
  flags: string[];
  samples: ColdStartSample[];
  firstLogMs: Spread | null;
  orphansReapedLogMs: Spread | null;
  firstRunningLogMs: Spread | null;
  readyLogMs: Spread | null;
  allRunningStatusMs: Spread | null;
  lastRunningLogMs: Spread | null;
}

export function coldStartSeries(name: string, flags: string[], samples: ColdStartSample[]): ColdStartSeries {
  return {
    name, flags, samples,
    firstLogMs: spread(samples.map((s) => s.firstLogMs)),
    orphansReapedLogMs: spread(samples.map((s) => s.orphansReapedLogMs)),
    firstRunningLogMs: spread(samples.map((s) => s.firstRunningLogMs)),
    readyLogMs: spread(samples.map((s) => s.readyLogMs)),
    allRunningStatusMs: spread(samples.map((s) => s.allRunningStatusMs)),
    lastRunningLogMs: spread(samples.map((s) => s.lastRunningLogMs)),
  };
}

export interface VariantResult {
  name: string;
  flags: string[];
  healthy: boolean;
  linkState: string;
  running: number;
  error: string | null;
  idle: IdleFigures;
}

export interface EdgeBenchReport {
  bench: 'edge';
  node: string;
  cpus: number;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  heartbeatSeconds: number;
  kinds: { kind: string; count: number; skipped: string | null }[];
  workloads: number;
  nodeStartupMs: Spread | null;
  idle: { zeroWorkloads: IdleFigures; withWorkloads: IdleFigures };
  update: {
    app: string;
    samples: UpdateSample[];
    putMs: Spread | null;
    statusRunningMs: Spread | null;
    edgeFirstLogMs: Spread | null;
    edgeRunningLogMs: Spread | null;
  };
  v8Variants: VariantResult[];
  bestFlagSet: string | null;
  /** Default flags first, then the chosen flag sets (see `coldStartCandidates`). */
  coldStart: { default: ColdStartSeries; withFlags: ColdStartSeries[] };
  /** Null when --containers 0. */
  containers: ContainerPhaseResult | null;
  memoryProbes: MemoryProbeReport | null;
  targets: typeof TARGETS & { idleRssMet: boolean; coldStartMet: boolean };
  /** SIGTERM of cloudcore before the cold starts: how long until it exited, and its code (-1: SIGKILLed). */
  cloudStop: { ms: number; exitCode: number | null };
  /** Workloads still alive after edgecore's SIGTERM (the benchmark then SIGKILLs them); must be 0. */
  cleanup: { workloadsLeftAfterStop: number };
  warnings: string[];
}

export function targetCheck(idle: IdleFigures, cold: ColdStartSeries): EdgeBenchReport['targets'] {
  return {
    ...TARGETS,
    idleRssMet: idle.rssEndMiB < TARGETS.idleRssMiB,
    coldStartMet: cold.allRunningStatusMs !== null && cold.allRunningStatusMs.max < TARGETS.coldStartAllRunningMs,
  };
}

export function warningsFor(r: Pick<EdgeBenchReport, 'idle' | 'v8Variants' | 'coldStart' | 'loadAverageStart' | 'cpus'>): string[] {
  const w: string[] = [];
  if (!r.idle.zeroWorkloads.settled || !r.idle.withWorkloads.settled) w.push('edgecore did not settle below 3% CPU before an idle window');
  for (const v of r.v8Variants) if (!v.healthy) w.push(`flag set ${v.name} (${v.flags.join(' ')}): edgecore not healthy: ${v.error ?? `link ${v.linkState}, ${v.running} running`}`);
  const cold = [r.coldStart.default, ...r.coldStart.withFlags].flatMap((c) => c.samples);
  if (cold.some((s) => s.orphansLeft > 0)) w.push('a cold start left workloads of the killed edgecore running');
  if ((r.loadAverageStart[0] ?? 0) > r.cpus * 0.5) w.push(`machine already loaded at start (1-min load ${r.loadAverageStart[0]} on ${r.cpus} cores): timings are pessimistic`);
  return w;
}

const fmt = (s: Spread | null, unit = 'ms') => (s ? `min ${s.min} / p50 ${s.p50} / max ${s.max} ${unit} (n=${s.count})` : 'n/a');
const pad = (text: string, width: number) => text.padEnd(width);

function idleLine(label: string, f: IdleFigures): string {
  return `  ${pad(label, 16)} RSS ${f.rssEndMiB} MiB (mean ${f.rssMeanMiB}, max ${f.rssMaxMiB}; anon ${f.rssAnonEndMiB}, file ${f.rssFileEndMiB}; peak ${f.peakRssMiB})`
    + `  CPU ${f.cpuPercent}% of a core over ${f.seconds} s  threads ${f.threads}`
    + `  | children: ${f.children.count} procs, RSS ${f.children.rssMiB} MiB (anon ${f.children.rssAnonMiB})`;
}

const signed = (n: number) => (n < 0 ? `${n}` : `+${n}`);

function probeTable(rows: readonly ProbeDelta[]): string[] {
  return rows.map((r) => `    ${pad(r.label, 36)} ${signed(r.rssMiB)} MiB RSS (anon ${signed(r.rssAnonMiB)}), heapUsed ${signed(r.heapUsedMiB)}, external ${signed(r.externalMiB)}, ${r.ms} ms`);
}

function containerLines(c: ContainerPhaseResult): string[] {
  if (c.skipped !== null) return [`containers: skipped: ${c.skipped}`];
  if (c.error !== null) return [`containers: FAILED: ${c.error}`];
  const f = c.figures;
  return [
    `5. containers (${f.count} × ${f.image} on a throw-away Podman engine, edgecore node ${f.node} with --container-engine, cloud connected):`,
    `  engine start + image build: ${f.engineSetupMs} ms; apps POSTed → all ${f.count} Running: ${f.allRunningMs} ms`,
    idleLine('0 containers', f.idle.zeroContainers),
    idleLine(`${f.count} containers`, f.idle.withContainers),
    `  update (PUT env change of ${f.update.app}, status polled every 10 ms):`,
    `    PUT round trip:                      ${fmt(f.update.putMs)}`,
    `    PUT → edge logged new pid Running:   ${fmt(f.update.edgeRunningLogMs)}`,
    `    PUT → status shows new gen Running:  ${fmt(f.update.statusRunningMs)}`,
    `  cleanup: ${f.containersLeftAfterStop} containers left in the engine after DELETE + edgecore SIGTERM`,
  ];
}

export function summaryText(r: EdgeBenchReport): string {
  const out: string[] = [];
  out.push(`edge benchmark — node ${r.node}, ${r.cpus} cores, load average ${r.loadAverageStart.join(' ')} (start) → ${r.loadAverageEnd.join(' ')} (end)`);
  out.push(`targets: edgecore idle RSS < ${TARGETS.idleRssMiB} MB; cold start to all process workloads running < ${TARGETS.coldStartAllRunningMs} ms`);
  for (const k of r.kinds) out.push(`workloads: ${k.count} ${k.kind}${k.skipped ? ` — ${k.skipped}` : ''}`);
  out.push(`bare node start-up (node -e 0, spawn → exit): ${fmt(r.nodeStartupMs)}`);
  out.push('');
  out.push('1. edgecore idle (cloud connected, heartbeat ' + r.heartbeatSeconds + ' s):');
  out.push(idleLine('0 workloads', r.idle.zeroWorkloads));
  out.push(idleLine(`${r.workloads} workloads`, r.idle.withWorkloads));
  out.push(`  target idle RSS < ${TARGETS.idleRssMiB} MB: ${r.targets.idleRssMet ? 'MET' : 'NOT MET'} (${r.idle.withWorkloads.rssEndMiB} MiB with ${r.workloads} workloads)`);
  out.push('');
  out.push(`2. desired change → running (PUT env change of ${r.update.app}, status polled every 10 ms):`);
  out.push(`  PUT round trip:                      ${fmt(r.update.putMs)}`);
  out.push(`  PUT → edge first log line (old stopped, new Pending): ${fmt(r.update.edgeFirstLogMs)}`);
  out.push(`  PUT → edge logged new pid Running:   ${fmt(r.update.edgeRunningLogMs)}`);
  out.push(`  PUT → status shows new gen Running:  ${fmt(r.update.statusRunningMs)}`);
  out.push('');
  out.push('3. cold start, cloud down, after kill -9 (orphans reaped by the new edgecore):');
  for (const series of [r.coldStart.default, ...r.coldStart.withFlags]) {
    out.push(`  flag set ${series.name}: ${series.flags.length ? series.flags.join(' ') : '(no flags)'}`);
    out.push(`    spawn → first log line (node + modules loaded): ${fmt(series.firstLogMs)}`);
    out.push(`    spawn → orphans of the killed edgecore reaped: ${fmt(series.orphansReapedLogMs)}`);
    out.push(`    spawn → first workload Running log: ${fmt(series.firstRunningLogMs)}`);
    out.push(`    spawn → "edgecore ready" log:       ${fmt(series.readyLogMs)}`);
    out.push(`    spawn → last workload Running log:  ${fmt(series.lastRunningLogMs)}`);
    out.push(`    spawn → status: all ${r.workloads} Running: ${fmt(series.allRunningStatusMs)}`);
    const rss = series.samples.map((s) => s.rssAtAllRunningMiB);
    out.push(`    RSS at all-running: ${rss.join(', ')} MiB; orphans at spawn ${series.samples.map((s) => s.orphansAtSpawn).join(',')}, left ${series.samples.map((s) => s.orphansLeft).join(',')}`);
  }
  out.push(`  target cold start < ${TARGETS.coldStartAllRunningMs} ms (max, default flags): ${r.targets.coldStartMet ? 'MET' : 'NOT MET'}`);
  out.push('');
  out.push(`4. V8 flag sets (edgecore restarted, cloud connected, ${r.workloads} workloads):`);
  for (const v of r.v8Variants) {
    out.push(`  ${pad(v.name, 20)} RSS ${pad(String(v.idle.rssEndMiB), 5)} MiB (anon ${pad(String(v.idle.rssAnonEndMiB), 5)} file ${pad(String(v.idle.rssFileEndMiB), 5)} peak ${pad(String(v.idle.peakRssMiB), 5)})`
      + ` CPU ${pad(`${v.idle.cpuPercent}%`, 6)} threads ${v.idle.threads}${v.healthy ? '' : '  UNHEALTHY'}  ${v.flags.join(' ')}`);
  }
  out.push(`  best flag set: ${r.bestFlagSet ?? 'none (no healthy set saves ≥ 1 MiB)'}`);
  if (r.memoryProbes) {
    out.push('');
    out.push('  where the memory goes (probe processes, after full GC):');
    out.push('   each alone (first row: bare node):');
    out.push(...probeTable(r.memoryProbes.isolated));
    out.push('   cumulative, in edgecore\'s load order:');
    out.push(...probeTable(r.memoryProbes.cumulative));
    if (r.memoryProbes.cumulativeWithFlags) {
      out.push(`   cumulative under ${r.memoryProbes.cumulativeWithFlags.flags.join(' ')}:`);
      out.push(...probeTable(r.memoryProbes.cumulativeWithFlags.rows));
    }
  }
  if (r.containers) out.push('', ...containerLines(r.containers));
  out.push('');
  out.push(`cleanup: ${r.cleanup.workloadsLeftAfterStop} workloads still alive after edgecore's SIGTERM (killed by the benchmark)`);
  for (const w of r.warnings) out.push(`WARNING: ${w}`);
  return out.join('\n');
}
