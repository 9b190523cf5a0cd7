import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { loadAverage } from '../procStats.js';
import { splitEvenly } from './benchDevices.js';
import { ChildRpc } from './childRpc.js';
import { PUBLISH_COUNT_KEYS, type LoaderTotals, type PhaseResult } from './devicesReport.js';
import { LatencyRecorder, type WindowFigures } from './latencyRecorder.js';
import { LoadWindow, type ProcessGroup } from './machineLoad.js';

/** Starting the load generators and running one measured phase against a broker. */

export const LOADER_MODULE = fileURLToPath(new URL('./loaderChild.js', import.meta.url));

const LatencySchema = z.object({ count: z.number(), min: z.number(), p50: z.number(), p90: z.number(), p99: z.number(), max: z.number() });
export const WindowSchema: z.ZodType<WindowFigures> = z.object({
  count: z.number(), windowSeconds: z.number(), perSecond: z.number(), latencyMs: LatencySchema,
  perSecondTimeline: z.array(z.object({ count: z.number(), maxLatencyMs: z.number() })),
});
const RunResultSchema = z.object({
  sent: z.number(), acked: z.number(), telemetrySent: z.number(), telemetryAcked: z.number(), failed: z.number(), skippedAtCap: z.number(), lagDropped: z.number(),
  leftInflight: z.number(), startUs: z.number(), endUs: z.number(), drainMs: z.number(), disconnects: z.number(),
});

export interface Loaders {
  rpcs: ChildRpc[];
  connectMs: number;
}

/**
 * Forks `count` loaders at nice value `nice`, splits the devices between them and connects them
 * all. Nice is an experiment's knob, not a fairer default: niced loaders let the DeviceHub take
 * ~15 % more, but cut mosquitto's rate nearly in half (mosquitto and its subscriber, always
 * scheduled first, wake once per message and lose their batching), so both brokers run with
 * their loaders at 0 unless asked (docs/benchmarks.md, session 11).
 */
export async function startLoaders(opts: {
  count: number; nice: number; devices: string[]; port: number; password: string; t0Ms: number; concurrency: number; timeoutMs: number;
  /** Per-device passwords (each loader gets those of its slice); absent: `password` for all. */
  passwords?: Record<string, string>;
}, started: (rpc: ChildRpc) => void): Promise<Loaders> {
  const slices = splitEvenly(opts.devices, opts.count);
  const rpcs = slices.map((_, i) => ChildRpc.start(`loader-${i + 1}`, LOADER_MODULE));
  rpcs.forEach(started);
  for (const rpc of rpcs) if (opts.nice !== 0) setPriority(rpc.pid, opts.nice);
  const t = Date.now();
  const perLoader = Math.max(1, Math.ceil(opts.concurrency / rpcs.length));
  await Promise.all(rpcs.map((rpc, i) => rpc.call({
    cmd: 'connect', port: opts.port, devices: slices[i]!, password: opts.password,
    ...(opts.passwords ? { passwords: Object.fromEntries(slices[i]!.map((d) => [d, opts.passwords![d] ?? opts.password])) } : {}),
    concurrency: perLoader, timeoutMs: opts.timeoutMs, t0Ms: opts.t0Ms,
  }, z.object({ connectMs: z.number() }), opts.timeoutMs + slices[i]!.length * 100)));
  return { rpcs, connectMs: Date.now() - t };
}

export interface PhaseSpec {
  mode: 'saturate' | 'paced';
  seconds: number;
  /** Excluded from the steady-state window at the start of sending. */
  warmupSeconds: number;
  inflight: number;
  /** Aggregate offered rate (paced only). */
  ratePerSecond: number;
  /** Bound on publishes over all loaders. */
  maxMessages: number;
  /** Every n-th publish of a device is a telemetry sample (0: reports only). */
  telemetryEvery: number;
}

/** Where a phase's updates are counted and timed. */
export interface PhaseConsumer {
  total(): Promise<number>;
  window(fromUs: number, toUs: number): Promise<WindowFigures>;
}

/** A child that records each update it receives (mosquitto's subscriber). */
export function receivingChild(rpc: ChildRpc): PhaseConsumer {
  return {
    total: () => rpc.call({ cmd: 'total' }, z.number(), 30_000),
    window: (fromUs, toUs) => rpc.call({ cmd: 'window', fromUs, toUs }, WindowSchema, 60_000),
  };
}

const AckRecordsSchema = z.object({ sentUs: z.array(z.number()), receivedUs: z.array(z.number()) });

/** The publishers' PUBACKs: for the hub, which acks an update once it is committed. */
export function publisherAcks(loaders: ChildRpc[]): PhaseConsumer {
  return {
    total: async () => (await Promise.all(loaders.map((rpc) => rpc.call({ cmd: 'ackTotal' }, z.number(), 30_000)))).reduce((a, b) => a + b, 0),
    window: async (fromUs, toUs) => {
      const merged = new LatencyRecorder();
      for (const rpc of loaders) merged.addAll(await rpc.call({ cmd: 'acks', fromUs, toUs }, AckRecordsSchema, 60_000));
      return merged.window(fromUs, toUs);
    },
  };
}

/**
 * More consumers timed over the same window as the phase's own (issue 24: local app subscribers,
 * a route's destination), and counters read when sending stops and again once all settled.
 */
export interface PhaseExtras {
  consumers: Record<string, PhaseConsumer>;
  counters?: () => Promise<Record<string, number>>;
}

/** Waits until the consumer's count stops moving (it may trail the publishers), at most maxMs. */
async function settleConsumer(consumer: PhaseConsumer, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = -1;
  while (Date.now() < deadline) {
    const total = await consumer.total();
    if (total === last) return;
    last = total;
    await sleep(500);
  }
}

export async function runPhase(
  loaders: ChildRpc[], consumer: PhaseConsumer, groups: ProcessGroup[], spec: PhaseSpec, clockTicks: number, extras?: PhaseExtras,
): Promise<PhaseResult> {
  const durationMs = Math.round(spec.seconds * 1000);
  const window = new LoadWindow(groups, clockTicks);
  const runs = Promise.all(loaders.map((rpc) => rpc.call({
    cmd: 'run', mode: spec.mode, durationMs, maxMessages: Math.max(1, Math.ceil(spec.maxMessages / loaders.length)),
    inflight: spec.inflight, ratePerSecond: spec.ratePerSecond / loaders.length, drainTimeoutMs: 15_000,
    telemetryEvery: spec.telemetryEvery,
  }, RunResultSchema, durationMs + 60_000)));
  // The load figures cover the sending time only, not the drain.
  const sending = sleep(durationMs).then(async () => {
    const stopped = { load: window.stop(), loadAvg: loadAverage() };
    return { ...stopped, counters: (await extras?.counters?.()) ?? {} };
  });
  let results: z.infer<typeof RunResultSchema>[];
  try {
    results = await runs;
  } finally {
    await sending;
  }
  const { load, loadAvg, counters: atSendingEnd } = await sending;
  await settleConsumer(consumer, 20_000);
  for (const extra of Object.values(extras?.consumers ?? {})) await settleConsumer(extra, 30_000);
  const startUs = Math.max(...results.map((r) => r.startUs));
  const endUs = Math.min(...results.map((r) => r.endUs));
  const fromUs = startUs + spec.warmupSeconds * 1e6 < endUs ? startUs + spec.warmupSeconds * 1e6 : startUs;
  const measured = await consumer.window(fromUs, endUs);
  const extraWindows: Record<string, WindowFigures> = {};
  for (const [label, extra] of Object.entries(extras?.consumers ?? {})) extraWindows[label] = await extra.window(fromUs, endUs);
  const totals: LoaderTotals = { sent: 0, acked: 0, telemetrySent: 0, telemetryAcked: 0, failed: 0, skippedAtCap: 0, lagDropped: 0, leftInflight: 0, disconnects: 0, maxDrainMs: 0 };
  for (const r of results) {
    for (const key of PUBLISH_COUNT_KEYS) totals[key] += r[key];
    totals.maxDrainMs = Math.max(totals.maxDrainMs, r.drainMs);
  }
  const sendingSeconds = Math.max((endUs - startUs) / 1e6, 1e-3);
  return {
    mode: spec.mode,
    seconds: Math.round(sendingSeconds * 10) / 10,
    offeredPerSecond: spec.mode === 'paced' ? spec.ratePerSecond : null,
    inflightPerDevice: spec.inflight,
    loaders: totals,
    publisherAckedPerSecond: Math.round(totals.acked / sendingSeconds),
    measured,
    machineBusyPercent: load.machineBusyPercent,
    machineStealPercent: load.machineStealPercent,
    processes: load.groups,
    loadAverage: loadAvg,
    ...(extras ? { extras: { windows: extraWindows, atSendingEnd, afterSettle: (await extras.counters?.()) ?? {} } } : {}),
  };
}
