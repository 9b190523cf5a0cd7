import type { GroupFigures } from './machineLoad.js';
import type { DiskProbe } from './diskProbe.js';
import type { WindowFigures } from './latencyRecorder.js';
import type { LocalAppsOptions } from './localApps.js';
import { extrasLines, localAppsSummary } from './localAppsReport.js';

/** What the devices benchmark measured, the issue's targets beside it, printed as text and JSON. */

export const TARGETS = {
  /** DeviceHub persisted reported updates/s ÷ mosquitto delivered updates/s, same client load. */
  throughputRatio: 0.7,
  persistedPerSecond: 20_000,
  p99Ms: 50,
} as const;

/** What one loader counts while publishing; summed over loaders for a phase. */
export interface PublishCounts {
  /** All publishes, telemetry included. */
  sent: number;
  acked: number;
  /** Of those, telemetry samples (the rest are twin reports). */
  telemetrySent: number;
  telemetryAcked: number;
  failed: number;
  /** paced: a due publish skipped because its device had `inflight` unacked already, or was offline. */
  skippedAtCap: number;
  /** paced: publishes the loader was too busy to send on time (more than 50 ms behind). */
  lagDropped: number;
  leftInflight: number;
  disconnects: number;
}

export const PUBLISH_COUNT_KEYS = ['sent', 'acked', 'telemetrySent', 'telemetryAcked', 'failed', 'skippedAtCap', 'lagDropped', 'leftInflight', 'disconnects'] as const satisfies readonly (keyof PublishCounts)[];

export interface LoaderTotals extends PublishCounts {
  maxDrainMs: number;
}

export interface PhaseResult {
  mode: 'saturate' | 'paced';
  /** How long the loaders sent. */
  seconds: number;
  /** paced: the aggregate rate offered; saturate: null (the broker sets the pace). */
  offeredPerSecond: number | null;
  inflightPerDevice: number;
  loaders: LoaderTotals;
  /** PUBACKs the publishers got per second of sending. */
  publisherAckedPerSecond: number;
  /** Hub: at the publishers' PUBACKs (sent after the commit); mosquitto: at its subscriber. In the steady-state window. */
  measured: WindowFigures;
  machineBusyPercent: number;
  /** Of the busy share, what the host gave to other guests (steal); absent in reports before session 6. */
  machineStealPercent?: number;
  processes: Record<string, GroupFigures>;
  loadAverage: number[];
  /**
   * Issue 24: the other consumers over the same window (app subscribers, the route's destination,
   * mosquitto's plain subscribers) and counters (the route's queue) when sending stopped and once settled.
   */
  extras?: { windows: Record<string, WindowFigures>; atSendingEnd: Record<string, number>; afterSettle: Record<string, number> };
  /** Hub only: transactions during the phase and the messages (work items) each carried on average. */
  hubCommits?: { transactions: number; meanItems: number };
}

export interface TargetResult {
  /** devicehub: the hub child; edgecore: a whole edgecore joined to a cloudcore (--target edgecore); mosquitto: the reference. */
  target: 'devicehub' | 'edgecore' | 'mosquitto';
  connectMs: number;
  /** The broker with every device connected, before any load. */
  brokerRssIdleMiB: number;
  phases: PhaseResult[];
  /** Counters the consumer kept (hub: statusSnapshot, versions, outbox; subscriber: messages). */
  consumerCounters: Record<string, number>;
  warnings: string[];
}

export interface TargetCheck {
  target: number;
  actual: number | null;
  met: boolean | null;
}

export interface DevicesBenchReport {
  bench: 'devices';
  devices: number;
  seconds: number;
  loaders: number;
  /** Nice value of the loader processes (0: the brokers' priority). */
  loaderNice: number;
  node: string;
  cpus: number;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  /** The edge side under test (absent in reports before --target: the hub child). */
  target?: 'hub' | 'edgecore';
  /** Saturated phases per target, the two targets taking turns. */
  rounds: number;
  /** Node flags the hub child ran with ([] = plain node; edgecore's binary uses --lite-mode). */
  hubNodeFlags: string[];
  /** The edge side under test: the hub child, or with --target edgecore a whole edgecore (its `target` says which). */
  devicehub: TargetResult;
  mosquitto: TargetResult | null;
  targets: {
    throughputRatio: TargetCheck & { rounds: (number | null)[] };
    persistedPerSecond: TargetCheck;
    p99Ms: TargetCheck & { phase: string };
  };
  hubCpuProfile: { file: string; top: string } | null;
  /** WAL + synchronous=FULL single-row commits on the temp dir's disk, before and after the run. */
  disk: { before: DiskProbe; after: DiskProbe };
  /** The directory the hub's database (twins + outbox) was in (the disk probe ran there too). */
  hubDbDir: string;
  /** Issue 24's local apps and route, when asked for (--app-subscribers, --route). */
  localApps?: LocalAppsOptions;
  totalSeconds: number;
}

export function phase(t: TargetResult | null, mode: PhaseResult['mode']): PhaseResult | undefined {
  return t?.phases.find((p) => p.mode === mode);
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function check(target: number, actual: number | null, atLeast: boolean): TargetCheck {
  if (actual === null || !Number.isFinite(actual)) return { target, actual: null, met: null };
  return { target, actual, met: atLeast ? actual >= target : actual < target };
}

const roundTo = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;

/**
 * Throughput targets are judged on the saturated phases (what each broker can carry): the
 * ratio is the median of the rounds' ratios, each round a hub phase and the mosquitto phase
 * right after it; the persisted rate is the median of the hub's rounds. The latency target is
 * judged on the paced phase (latency at a load the hub carries; a saturated closed loop has
 * latency ≈ devices × inflight ÷ throughput by Little's law, whatever the broker).
 */
export function targetChecks(hub: TargetResult, mosquitto: TargetResult | null): DevicesBenchReport['targets'] {
  const hubRounds = hub.phases.filter((p) => p.mode === 'saturate');
  const mosqRounds = mosquitto?.phases.filter((p) => p.mode === 'saturate') ?? [];
  const ratios = hubRounds.map((h, i) => {
    const m = mosqRounds[i]?.measured.perSecond;
    return m !== undefined && m > 0 ? roundTo(h.measured.perSecond / m, 3) : null;
  });
  const known = ratios.filter((r): r is number => r !== null);
  // The persisted-updates target is about twin reports: telemetry samples in the mix are left out.
  const reportsPerSecond = hubRounds.map((p) => p.measured.perSecond
    * (p.loaders.acked > 0 ? (p.loaders.acked - p.loaders.telemetryAcked) / p.loaders.acked : 1));
  const latencyPhase = phase(hub, 'paced') ?? hubRounds[0];
  const p99 = latencyPhase && latencyPhase.measured.count > 0 ? latencyPhase.measured.latencyMs.p99 : null;
  return {
    throughputRatio: { ...check(TARGETS.throughputRatio, known.length === 0 ? null : roundTo(median(known), 3), true), rounds: ratios },
    persistedPerSecond: check(TARGETS.persistedPerSecond, reportsPerSecond.length === 0 ? null : Math.round(median(reportsPerSecond)), true),
    p99Ms: { ...check(TARGETS.p99Ms, p99, false), phase: latencyPhase?.mode ?? 'none' },
  };
}

const f = (x: number, d = 1) => x.toFixed(d);
const verdict = (c: TargetCheck) => (c.met === null ? 'n/a' : c.met ? 'MET' : 'NOT met');

function phaseLines(p: PhaseResult, consumerLabel: string, round: number | null): string[] {
  const l = p.loaders;
  const m = p.measured;
  const lat = m.latencyMs;
  const procs = Object.entries(p.processes)
    .map(([label, g]) => `${label} ${f(g.cpuPercentOfOneCore, 0)} % CPU / ${f(g.rssMaxMiB, 0)} MiB`).join(', ');
  const head = p.mode === 'saturate'
    ? `  saturate${round === null ? '' : `, round ${round}`} (${p.inflightPerDevice} unacked publish per device, ${f(p.seconds, 0)} s):`
    : `  paced at ${f(p.offeredPerSecond ?? 0, 0)}/s offered (≤ ${p.inflightPerDevice} unacked per device, ${f(p.seconds, 0)} s):`;
  return [
    head,
    `    ${consumerLabel}: ${f(m.perSecond, 0)}/s over ${f(m.windowSeconds, 1)} s steady state (${m.count} messages); `
      + `latency p50 ${f(lat.p50)} / p90 ${f(lat.p90)} / p99 ${f(lat.p99)} / max ${f(lat.max)} ms`,
    `    per second: ${m.perSecondTimeline.map((s) => `${s.count}@${f(s.maxLatencyMs, 0)}`).join(' ')} (messages@max latency ms)`,
    `    publishers: sent ${l.sent} (${l.telemetrySent} of them telemetry), acked ${l.acked} (${f(p.publisherAckedPerSecond, 0)}/s), failed ${l.failed}, `
      + `left unacked ${l.leftInflight}, disconnects ${l.disconnects}`
      + (p.mode === 'paced' ? `, skipped at cap ${l.skippedAtCap}, dropped by lagging loaders ${l.lagDropped}` : ''),
    `    load: machine ${f(p.machineBusyPercent, 0)} % busy (all cores${p.machineStealPercent === undefined ? '' : `; ${f(p.machineStealPercent, 0)} % stolen by the host`}), loadavg ${p.loadAverage.join(' ')}; ${procs}`,
    ...extrasLines(p),
    ...(p.hubCommits ? [`    hub commits: ${p.hubCommits.transactions} transactions, ${f(p.hubCommits.meanItems, 0)} messages each on average`] : []),
  ];
}

function targetTitle(t: TargetResult, nodeFlags: string[]): string {
  switch (t.target) {
    case 'devicehub': return `DeviceHub (aedes + twin engine + SQLite, own process${nodeFlags.length > 0 ? `, node ${nodeFlags.join(' ')}` : ''})`;
    case 'edgecore': return 'edgecore (the real binary\'s main.js, joined to a cloudcore child on SQLite; devices, apps and route set up through the REST API)';
    case 'mosquitto': return 'mosquitto (Debian, persistence off) + 1 subscriber process';
  }
}

function targetLines(t: TargetResult, rounds: number, nodeFlags: string[] = []): string[] {
  const label = t.target === 'mosquitto' ? 'delivered to subscriber' : 'taken in (reports committed to the twin, telemetry batched; timed to the PUBACK)';
  return [
    `${targetTitle(t, t.target === 'devicehub' ? nodeFlags : [])}:`,
    `  connect: ${f(t.connectMs / 1000, 2)} s for all devices; broker RSS with all connected, idle: ${f(t.brokerRssIdleMiB)} MiB`,
    ...t.phases.flatMap((p) => {
      const round = t.phases.filter((q) => q.mode === 'saturate').indexOf(p);
      return phaseLines(p, label, p.mode === 'saturate' && rounds > 1 ? round + 1 : null);
    }),
    `  counters: ${Object.entries(t.consumerCounters).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    ...t.warnings.map((w) => `  !! ${w}`),
  ];
}

function diskText(d: DiskProbe): string {
  return `${d.commitsPerSecond} commits/s (p50 ${f(d.commitMs.p50, 3)} / p99 ${f(d.commitMs.p99, 3)} / max ${f(d.commitMs.max, 1)} ms)`;
}

/** Above this much steal in any phase the run is flagged: its figures say more about the host than the brokers. */
export const STEAL_WARNING_PERCENT = 10;

/** A warning when the host took a large share of the cores from this VM in some phase (null otherwise). */
export function stealWarning(r: Pick<DevicesBenchReport, 'devicehub' | 'mosquitto'>): string | null {
  const phases = [...r.devicehub.phases, ...(r.mosquitto?.phases ?? [])];
  const steal = phases.map((p) => p.machineStealPercent ?? 0);
  const worst = Math.max(0, ...steal);
  if (worst < STEAL_WARNING_PERCENT) return null;
  return `!! the host took up to ${f(worst, 0)} % of the cores from this machine (steal; ≥ ${STEAL_WARNING_PERCENT} % in `
    + `${steal.filter((x) => x >= STEAL_WARNING_PERCENT).length} of ${phases.length} phases): compare these figures only with runs of similar steal`;
}

export function summaryText(r: DevicesBenchReport): string {
  const t = r.targets;
  const steal = stealWarning(r);
  return [
    `== EdgeFleet devices benchmark: ${r.devices} devices over ${r.loaders} load processes${r.loaderNice === 0 ? '' : ` (nice ${r.loaderNice})`}, QoS 1 twin/reported, node ${r.node}, ${r.cpus} CPUs`,
    `   load average at start ${r.loadAverageStart.join(' ')}, at end ${r.loadAverageEnd.join(' ')} `
      + '(everything — brokers, loaders, subscriber — shares these cores)',
    `   hub databases in ${r.hubDbDir}: ${diskText(r.disk.before)} before the run, ${diskText(r.disk.after)} after it`,
    '   (synced single-row SQLite commits, WAL + synchronous=FULL; the hub commits the twins of all reports of one event-loop turn at once,',
    '    with the outbox entries that are due: a device\'s newest state at most once per twin upstream interval)',
    ...targetLines(r.devicehub, r.rounds, r.hubNodeFlags),
    ...(r.mosquitto ? targetLines(r.mosquitto, r.rounds) : ['mosquitto: skipped']),
    'targets (issue 4):',
    `  DeviceHub ÷ mosquitto throughput (saturated${r.rounds > 1 ? `, median of ${r.rounds} rounds` : ''}): `
      + `${t.throughputRatio.actual === null ? 'n/a' : f(t.throughputRatio.actual, 2)}× (target ≥ ${t.throughputRatio.target}×) ${verdict(t.throughputRatio)}`
      + (r.rounds > 1 ? `; rounds ${t.throughputRatio.rounds.map((x) => (x === null ? 'n/a' : f(x, 2))).join(' ')}` : ''),
    `  persisted reported updates/s (saturated${r.rounds > 1 ? ', median of the rounds' : ''}; telemetry in the mix not counted): ${t.persistedPerSecond.actual ?? 'n/a'} (target ≥ ${t.persistedPerSecond.target}) ${verdict(t.persistedPerSecond)}`,
    `  p99 device→twin latency (${t.p99Ms.phase}): ${t.p99Ms.actual === null ? 'n/a' : f(t.p99Ms.actual)} ms (target < ${t.p99Ms.target} ms) ${verdict(t.p99Ms)}`,
    ...(steal === null ? [] : [steal]),
    ...(r.localApps ? localAppsSummary(r) : []),
    ...(r.hubCpuProfile ? [`DeviceHub CPU profile of the saturated phase (${r.hubCpuProfile.file}):`, r.hubCpuProfile.top.trimEnd()] : []),
    `(total ${f(r.totalSeconds)} s)`,
  ].join('\n');
}
