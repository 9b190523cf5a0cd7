import type { DevicesBenchReport, PhaseResult, TargetResult } from './devicesReport.js';
import type { WindowFigures } from './latencyRecorder.js';

/**
 * Issue 24's figures out of a devices bench report: local delivery (device publish → app
 * subscriber), the route's throughput, queue and drops, and the brokers' CPU and RSS, for the
 * text summary and for docs/benchmarks.md's table. Pure: the bench's JSON in, text out.
 */

export const APP_SUBSCRIBERS = 'app subscribers';
export const ROUTE_DESTINATION = 'route destination';
export const PLAIN_SUBSCRIBERS = 'plain subscribers';

const f = (x: number, d = 1) => x.toFixed(d);
const thousands = (x: number) => Math.round(x).toLocaleString('en-US');

function windowText(label: string, w: WindowFigures): string {
  const lat = w.latencyMs;
  return `${label}: ${f(w.perSecond, 0)}/s over ${f(w.windowSeconds, 1)} s (${w.count} messages); latency p50 ${f(lat.p50)} / p90 ${f(lat.p90)} / p99 ${f(lat.p99)} / max ${f(lat.max)} ms`;
}

function routeText(c: Record<string, number>): string {
  if (c.routeQueued === undefined) return '';
  return `queued ${c.routeQueued}, forwarded ${c.routeForwarded}, queue depth ${c.routeQueueDepth}, dropped ${c.routeDroppedQueueFull ?? 0} (queue full) + ${c.routeDroppedOversized ?? 0} (oversized)`;
}

/** The lines a phase adds to the summary when it had extra consumers. */
export function extrasLines(p: PhaseResult): string[] {
  if (!p.extras) return [];
  const lines = Object.entries(p.extras.windows).map(([label, w]) => `    ${windowText(label, w)}`);
  const atEnd = routeText(p.extras.atSendingEnd);
  if (atEnd !== '') lines.push(`    route when sending stopped: ${atEnd}`, `    route once settled: ${routeText(p.extras.afterSettle)}`);
  return lines;
}

/** Largest route queue depth seen when a phase's sending stopped (null without a route). */
export function maxQueueDepth(t: TargetResult): number | null {
  const depths = t.phases.flatMap((p) => (p.extras?.atSendingEnd.routeQueueDepth === undefined ? [] : [p.extras.atSendingEnd.routeQueueDepth]));
  return depths.length === 0 ? null : Math.max(...depths);
}

export interface LocalAppsFigures {
  /** Paced phase, or the first saturated one when there is none. */
  phase: PhaseResult['mode'];
  offeredPerSecond: number | null;
  hubApps: WindowFigures | null;
  mosquittoPlain: WindowFigures | null;
  routedPaced: WindowFigures | null;
  routedSaturated: WindowFigures | null;
  routeQueueDepthMax: number | null;
  routeDrops: number | null;
  hubCpuRss: { cpu: number; rss: number } | null;
  mosquittoCpuRss: { cpu: number; rss: number } | null;
  /** Edgecore target: the cloudcore beside it (context: it stores the routed messages, the twins and the telemetry). */
  cloudCpuRss: { cpu: number; rss: number } | null;
  /** Edgecore target: the route's messages the cloud stored (all phases), and the edge's count of forwarded ones. */
  cloudStored: number | null;
}

const latencyPhase = (t: TargetResult | null): PhaseResult | undefined => t?.phases.find((p) => p.mode === 'paced') ?? t?.phases[0];
const cpuRss = (p: PhaseResult | undefined, label: string) => {
  const g = p?.processes[label];
  return g === undefined ? null : { cpu: g.cpuPercentOfOneCore, rss: g.rssMaxMiB };
};

/** The headline figures: latency at a load both brokers carry (the paced phase), routed rate in both phases. */
export function localAppsFigures(r: Pick<DevicesBenchReport, 'devicehub' | 'mosquitto'>): LocalAppsFigures {
  const hubPhase = latencyPhase(r.devicehub);
  const mosqPhase = r.mosquitto?.phases.find((p) => p.mode === hubPhase?.mode) ?? latencyPhase(r.mosquitto);
  const saturated = r.devicehub.phases.find((p) => p.mode === 'saturate');
  const c = r.devicehub.consumerCounters;
  return {
    phase: hubPhase?.mode ?? 'saturate',
    offeredPerSecond: hubPhase?.offeredPerSecond ?? null,
    hubApps: hubPhase?.extras?.windows[APP_SUBSCRIBERS] ?? null,
    mosquittoPlain: mosqPhase?.extras?.windows[PLAIN_SUBSCRIBERS] ?? null,
    routedPaced: r.devicehub.phases.find((p) => p.mode === 'paced')?.extras?.windows[ROUTE_DESTINATION] ?? null,
    routedSaturated: saturated?.extras?.windows[ROUTE_DESTINATION] ?? null,
    routeQueueDepthMax: maxQueueDepth(r.devicehub),
    routeDrops: c.routeQueued === undefined ? null : (c.routeDroppedQueueFull ?? 0) + (c.routeDroppedOversized ?? 0),
    // The group is labelled as its target (devicehub or edgecore).
    hubCpuRss: cpuRss(hubPhase, r.devicehub.target),
    mosquittoCpuRss: cpuRss(mosqPhase, 'mosquitto'),
    cloudCpuRss: cpuRss(hubPhase, 'cloudcore'),
    cloudStored: c.routeCloudStored ?? null,
  };
}

const latency = (w: WindowFigures | null) => (w === null ? '—' : `${f(w.latencyMs.p50)} / ${f(w.latencyMs.p99)} ms`);
const rate = (w: WindowFigures | null) => (w === null ? '—' : `${thousands(w.perSecond)}/s`);
const proc = (x: { cpu: number; rss: number } | null) => (x === null ? '—' : `${f(x.cpu, 0)} % / ${f(x.rss, 0)} MiB`);

export function localAppsSummary(r: DevicesBenchReport): string[] {
  const x = localAppsFigures(r);
  const at = x.offeredPerSecond === null ? x.phase : `${x.phase} at ${thousands(x.offeredPerSecond)}/s`;
  const edge = r.devicehub.target === 'edgecore' ? 'edgecore' : 'DeviceHub';
  const cloud = r.localApps?.route === 'cloud';
  return [
    `local apps and route (issue 24; ${r.localApps ? `${r.localApps.appSubscribers} subscribers, route ${r.localApps.route}` : 'off'}):`,
    `  local delivery p50 / p99 (${at}): ${edge} app subscribers ${latency(x.hubApps)}, mosquitto plain subscribers ${latency(x.mosquittoPlain)}`,
    `  routed to ${cloud ? 'the cloud (stored, timed by the cloud\'s receipt)' : 'the destination'}: ${rate(x.routedSaturated)} saturated, ${rate(x.routedPaced)} paced; `
      + `largest queue depth when sending stopped ${x.routeQueueDepthMax ?? '—'}; drops ${x.routeDrops ?? '—'}${x.cloudStored === null ? '' : `; stored in the cloud in all ${x.cloudStored}`}`,
    `  CPU (of one core) / RSS (${x.phase}): ${edge} ${proc(x.hubCpuRss)}, mosquitto ${proc(x.mosquittoCpuRss)}${x.cloudCpuRss === null ? '' : `, cloudcore ${proc(x.cloudCpuRss)}`}`,
    `  docs row: ${localAppsDocRow(r, 'this run')}`,
  ];
}

/** One row of docs/benchmarks.md's issue 24 table (columns as its header says). */
export function localAppsDocRow(r: DevicesBenchReport, label: string): string {
  const x = localAppsFigures(r);
  const hubSat = r.devicehub.phases.find((p) => p.mode === 'saturate');
  const mosqSat = r.mosquitto?.phases.find((p) => p.mode === 'saturate');
  const cells = [
    label,
    `${r.loadAverageStart.join(' ')} → ${r.loadAverageEnd.join(' ')}`,
    hubSat ? `${thousands(hubSat.measured.perSecond)}/s` : '—',
    mosqSat ? `${thousands(mosqSat.measured.perSecond)}/s` : '—',
    `${latency(x.hubApps)}${x.offeredPerSecond === null ? '' : ` (${thousands(x.offeredPerSecond)}/s)`}`,
    latency(x.mosquittoPlain),
    `${rate(x.routedSaturated)} sat., ${rate(x.routedPaced)} paced`,
    `${x.routeQueueDepthMax ?? '—'} / ${x.routeDrops ?? '—'}`,
    proc(x.hubCpuRss),
    proc(x.mosquittoCpuRss),
    ...(x.cloudCpuRss === null ? [] : [proc(x.cloudCpuRss)]),
  ];
  return `| ${cells.join(' | ')} |`;
}
