import type { SetupTimings } from './fleet.js';
import type { IdleResult, StepResult, TrafficPerNode } from './measure.js';
import type { ProcDelta } from './procStats.js';
import { outageText, type OutageResult } from './outage.js';
import { mtlsText, type MtlsResult } from './mtlsPhase.js';

/** Everything one benchmark run measured; printed as a summary and as one JSON line. */
export interface FanoutReport {
  bench: 'fanout';
  nodes: number;
  heartbeatSeconds: number;
  idleSeconds: number;
  node: string;
  cpus: number;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  setup: SetupTimings & { cloud: ProcDelta; bench: ProcDelta; settleMs: number; cloudSettled: boolean };
  create: StepResult;
  update: StepResult;
  /** Each cut of every link, with a change made during it (empty when skipped). */
  outages: OutageResult[];
  /** Why the outage phase did not run, when it was asked for and could not. */
  outageSkipped: string | null;
  idle: IdleResult | null;
  /** The same fleet over mutual TLS: connect, idle and a mass rotation (null when skipped). */
  mtls: MtlsResult | null;
  cloudRssEndMiB: number;
  benchRssEndMiB: number;
  cloudCpuProfileDir: string | null;
  /** Anything that makes the figures suspect (leaks, reconnects, a cloud that never went quiet). */
  warnings: string[];
}

const fmt = (x: number, digits = 1) => x.toFixed(digits);

function proc(label: string, d: ProcDelta): string {
  return `${label}: RSS ${fmt(d.rssBeforeMiB)} → ${fmt(d.rssAfterMiB)} MiB, CPU ${fmt(d.cpuSeconds, 2)} s (${fmt(d.cpuPercentOfOneCore)} % of one core)`;
}

function traffic(t: TrafficPerNode): string[] {
  return [
    `      sync frames in ${fmt(t.syncFramesIn, 2)} (${fmt(t.syncBytesIn, 0)} B), acks out ${fmt(t.ackFramesOut, 2)} (${fmt(t.ackBytesOut, 0)} B)`,
    `      all frames in/out ${fmt(t.framesIn, 2)}/${fmt(t.framesOut, 2)}, app bytes in/out ${fmt(t.appBytesIn, 0)}/${fmt(t.appBytesOut, 0)}, `
      + `ws headers ${fmt(t.wsHeaderBytes, 0)} B, TCP payload ${fmt(t.tcpPayloadBytes, 0)} B`,
    ...(t.foreignObjects > 0 ? [`      !! ${fmt(t.foreignObjects, 1)} workloads of OTHER nodes received per node`] : []),
  ];
}

function step(s: StepResult): string[] {
  return [
    `  ${s.step}: REST call ${fmt(s.restMs)} ms; every node applied+acked after ${fmt(s.allAckedMs)} ms`
      + ` (cloudcore time ${s.cloudWindowMs[0]}..${s.cloudWindowMs[1]} ms)`,
    `    per-node ack latency min ${fmt(s.ackLatencyMs.min)} / p50 ${fmt(s.ackLatencyMs.p50)} / p90 ${fmt(s.ackLatencyMs.p90)} / p99 ${fmt(s.ackLatencyMs.p99)} / max ${fmt(s.ackLatencyMs.max)} ms`,
    '    per node until the last ack:',
    ...traffic(s.atAllAcked),
    `    per node until cloudcore was quiet again (+${s.quietAfterMs} ms${s.cloudSettled ? '' : ', NOT settled'}):`,
    ...traffic(s.untilQuiet),
    `    ${proc('cloudcore', s.cloud)}`,
    `    ${proc('bench (edges)', s.bench)}`,
    ...(s.reconnects > 0 ? [`    !! ${s.reconnects} link reconnects during this step`] : []),
  ];
}

export function summaryText(r: FanoutReport): string {
  const lines = [
    `== EdgeFleet fan-out benchmark: ${r.nodes} nodes, heartbeat ${r.heartbeatSeconds} s, node ${r.node}, ${r.cpus} CPUs`,
    `   load average at start ${r.loadAverageStart.join(' ')}, at end ${r.loadAverageEnd.join(' ')}`,
    `setup: tokens ${fmt(r.setup.mintMs / 1000, 2)} s, joins ${fmt(r.setup.joinMs / 1000, 2)} s, `
      + `links connected + snapshot ${fmt(r.setup.connectMs / 1000, 2)} s, settle ${fmt(r.setup.settleMs / 1000, 1)} s`,
    `  ${proc('cloudcore', r.setup.cloud)}`,
    `  ${proc('bench (edges)', r.setup.bench)}`,
    'fan-out of one app with an empty selector (binds to every node):',
    ...step(r.create),
    ...step(r.update),
  ];
  if (r.outages.length > 0) lines.push('outage: every link cut, the app changed during the cut, links restored:', ...r.outages.flatMap(outageText));
  if (r.outageSkipped) lines.push(`outage: skipped (${r.outageSkipped})`);
  const i = r.idle;
  if (i) {
    lines.push(
      `idle for ${fmt(i.seconds)} s (no changes, heartbeats only; cloudcore time ${i.cloudWindowMs[0]}..${i.cloudWindowMs[1]} ms), per node:`,
      `  frames ${fmt(i.framesPerNodePerMinute, 2)}/min (heartbeat predicts ${fmt(i.expectedFramesPerNodePerMinute, 2)})`,
      `  application bytes ${fmt(i.appBytesPerNodePerMinute)} B/min = ${fmt(i.appKbitPerSecondPerNode, 4)} kbit/s`,
      `  + WebSocket framing ${fmt(i.wsBytesPerNodePerMinute)} B/min = ${fmt(i.wsKbitPerSecondPerNode, 4)} kbit/s `
        + `(kernel socket counters: ${fmt(i.tcpPayloadBytesPerNodePerMinute)} B/min)`,
      `  + TCP/IPv4 headers, 52 B per frame (estimate, no pure ACKs) ${fmt(i.estimatedIpBytesPerNodePerMinute)} B/min `
        + `= ${fmt(i.estimatedIpKbitPerSecondPerNode, 4)} kbit/s`,
      `  ${proc('cloudcore', i.cloud)}`,
      `  ${proc('bench (edges)', i.bench)}`,
      ...(i.reconnects > 0 || i.linksDown > 0 ? [`  !! ${i.reconnects} reconnects, ${i.linksDown} links down at the end`] : []),
    );
  }
  lines.push(`end of the plain run: cloudcore RSS ${fmt(r.cloudRssEndMiB)} MiB, bench RSS ${fmt(r.benchRssEndMiB)} MiB`);
  if (r.mtls) lines.push(...mtlsText(r.mtls, r.idle));
  if (r.cloudCpuProfileDir) lines.push(`cloudcore CPU profile: ${r.cloudCpuProfileDir}`);
  for (const w of r.warnings) lines.push(`WARNING: ${w}`);
  return lines.join('\n');
}

export function warningsFor(r: Pick<FanoutReport, 'create' | 'update' | 'idle' | 'heartbeatSeconds'> & { setupSettled: boolean }): string[] {
  const w: string[] = [];
  if (!r.setupSettled) w.push('cloudcore did not go quiet after setup; the first step starts on a busy server');
  for (const s of [r.create, r.update]) {
    if (s.untilQuiet.foreignObjects > 0) {
      w.push(`${s.step}: edges received workloads bound to OTHER nodes (${s.untilQuiet.foreignObjects} per node): node authorization / watch filtering is broken in cloudcore`);
    }
    if (s.reconnects > 0) w.push(`${s.step}: ${s.reconnects} links reconnected`);
    if (!s.cloudSettled) w.push(`${s.step}: cloudcore still busy 60 s after the last ack`);
  }
  if (r.idle && r.idle.seconds < 2 * r.heartbeatSeconds) {
    w.push(`idle: the window (${r.idle.seconds.toFixed(0)} s) is shorter than two heartbeat periods (${2 * r.heartbeatSeconds} s); idle rates are quantized by where the pings fall`);
  }
  if (r.idle && (r.idle.reconnects > 0 || r.idle.linksDown > 0)) w.push(`idle: ${r.idle.reconnects} reconnects, ${r.idle.linksDown} links down`);
  return w;
}
