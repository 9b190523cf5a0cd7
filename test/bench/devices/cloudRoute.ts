import type { z } from 'zod';
import type { StoredRoutedMessageSchema } from '../../../protocol/index.js';
import { sentTimeOf } from './benchDevices.js';

/**
 * Pure pieces of the edgecore target (edgecoreTarget.ts): which options go together, what a
 * workload's environment says about its broker credential, and how the messages the cloud
 * stored for the route become timed records on the run's time axis (so "routed throughput
 * arriving in the cloud" is counted by the cloud's own receipt time, over the phase window).
 */

export type BenchTarget = 'hub' | 'edgecore';
export type BenchRoute = 'mqtt' | 'cloud' | 'none';

/**
 * Why a target/route pair cannot run (null: it can). The hub child has no cloud link, so a
 * cloud route needs the edgecore target; the edgecore target runs the cloud route or none (an
 * MQTT route there would measure the same RouteEngine the hub target already measures).
 */
export function targetRouteProblem(target: BenchTarget, route: BenchRoute): string | null {
  if (target === 'hub' && route === 'cloud') return '--route cloud needs --target edgecore (the hub child has no cloud link)';
  if (target === 'edgecore' && route === 'mqtt') return '--target edgecore runs --route cloud or none (--route mqtt is the hub target\'s)';
  return null;
}

/** Flags that only mean something for the hub child; with --target edgecore they would be silently ignored. */
export function hubOnlyFlagsProblem(target: BenchTarget, set: { hubCpuProf: boolean; hubNodeFlags: boolean; hubMaxBatch: boolean; hubTwinUpstreamMs: boolean }): string | null {
  if (target !== 'edgecore') return null;
  const given = Object.entries(set).filter(([, on]) => on).map(([k]) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  return given.length === 0 ? null : `${given.join(', ')}: only for --target hub (edgecore runs with its own defaults)`;
}

/** `/proc/<pid>/environ` (NUL-separated KEY=value) as a record; entries without "=" are skipped. */
export function parseEnviron(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

export interface WorkloadBrokerLogin { username: string; passwordFile: string; url: string }

/** The broker login edgecore gives a workload with an `mqtt` grant (EF_MQTT_*), or a message naming what is missing. */
export function brokerLoginOf(env: Record<string, string>): WorkloadBrokerLogin | string {
  const username = env.EF_MQTT_USERNAME;
  const passwordFile = env.EF_MQTT_PASSWORD_FILE;
  const url = env.EF_MQTT_URL;
  const missing = [['EF_MQTT_USERNAME', username], ['EF_MQTT_PASSWORD_FILE', passwordFile], ['EF_MQTT_URL', url]].filter(([, v]) => !v).map(([k]) => k);
  if (missing.length > 0) return `no ${missing.join(', ')} in the workload's environment`;
  return { username: username!, passwordFile: passwordFile!, url: url! };
}

type StoredRouted = z.infer<typeof StoredRoutedMessageSchema>;

export interface RoutedRecords {
  /** Send time (from the payload) and the cloud's receipt time, both µs since t0Ms. */
  sentUs: number[];
  receivedUs: number[];
  /** Stored messages whose payload carries no send time (or whose receipt time is not a date). */
  unreadable: number;
  /** Highest id seen (the cursor for the next page); `after` when the page was empty. */
  lastId: number;
  /**
   * Ids skipped between `after` and this page's ids: the cloud keeps the newest 100,000 per
   * route, so a gap means messages were trimmed before the bench read them (they were stored,
   * but cannot be timed).
   */
  missing: number;
}

/**
 * One page of `GET /routes/{r}/messages?after=` as timed records. `receivedAt` is the cloud's
 * clock when it stored the frame (ms resolution; same host as the bench), so a record's
 * receipt is when the message arrived in the cloud, and its latency is device → cloud store.
 */
export function routedRecords(items: readonly StoredRouted[], after: number, t0Ms: number): RoutedRecords {
  const out: RoutedRecords = { sentUs: [], receivedUs: [], unreadable: 0, lastId: after, missing: 0 };
  for (const item of items) {
    // Ids are AUTOINCREMENT and every insert of the route takes the next one; a jump is a trim.
    if (item.id > out.lastId + 1) out.missing += item.id - out.lastId - 1;
    out.lastId = Math.max(out.lastId, item.id);
    const sent = item.encoding === 'utf8' ? sentTimeOf(item.payload) : sentTimeOf(Buffer.from(item.payload, 'base64'));
    const receivedMs = Date.parse(item.receivedAt);
    if (sent === undefined || !Number.isFinite(receivedMs)) {
      out.unreadable++;
      continue;
    }
    out.sentUs.push(sent);
    out.receivedUs.push(Math.round((receivedMs - t0Ms) * 1000));
  }
  return out;
}
