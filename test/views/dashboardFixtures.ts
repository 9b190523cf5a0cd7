import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { AppSchema, type App, type Device, type Node, type NodePhase, type Workload, type WorkloadState } from '../../protocol/index.js';
import { openSqliteStore } from '../../cloudcore/store/sqliteStore.js';

/**
 * Fixtures for the dashboard's browser tests and benchmark: a fleet written straight into
 * cloudcore's SQLite file before cloudcore starts (thousands of real Node objects without
 * thousands of edge processes), and Debian's chromium driven by playwright-core.
 */

export const CHROMIUM = '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
}

export const ZONES = ['north', 'south', 'east', 'west'] as const;
const STATES: readonly WorkloadState[] = ['Running', 'Running', 'Running', 'Running', 'Running', 'Running', 'Pending', 'CrashLoop', 'Exited', 'Failed'];

const METER_MODEL = { protocol: 'virtual', properties: [{ name: 'power', type: 'float' as const, accessMode: 'ReadOnly' as const, unit: 'W' }] };

export interface PrefillOptions {
  /** Nodes to write, named `<prefix>-00001`… */
  nodes: number;
  prefix?: string;
  /** Also an app on every node with one Workload each, states spread over the fleet. */
  workloads?: boolean;
  /** Devices on every n-th node (two each); 0 for none. */
  devicesEvery?: number;
}

export interface PrefilledFleet {
  names: string[];
  byPhase: Record<NodePhase, number>;
  byZone: Record<string, number>;
  workloads: number;
  devices: number;
}

/**
 * Nodes are Offline or Pending only: a Ready node without a link would turn Offline once
 * cloudcore's first heartbeat window passes, and the counts must not move under a test.
 */
export async function prefillFleet(dataDir: string, opts: PrefillOptions): Promise<PrefilledFleet> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = await openSqliteStore({ path: join(dataDir, 'cloudcore.db') });
  const prefix = opts.prefix ?? 'site';
  const width = String(opts.nodes).length;
  const out: PrefilledFleet = { names: [], byPhase: { Ready: 0, Offline: 0, Pending: 0 }, byZone: {}, workloads: 0, devices: 0 };
  const now = Date.now();
  try {
    let app: App | undefined;
    if (opts.workloads) {
      // Parsed, so defaults are filled in as the API would: the scheduler then finds nothing to change.
      app = await store.create<App>(AppSchema.parse({ kind: 'App', metadata: { name: 'collector' }, spec: { selector: {}, template: { runtime: 'process', command: '/usr/bin/collector' } } }));
    }
    if (opts.devicesEvery) {
      await store.create({ kind: 'DeviceModel', metadata: { name: 'meter' }, spec: METER_MODEL });
    }
    for (let i = 0; i < opts.nodes; i++) {
      const name = `${prefix}-${String(i + 1).padStart(width, '0')}`;
      const phase: NodePhase = i % 5 === 4 ? 'Pending' : 'Offline';
      const zone = ZONES[i % ZONES.length]!;
      const seen = new Date(now - (i % 600) * 60_000).toISOString();
      await store.create<Node>({
        kind: 'Node', metadata: { name, labels: { zone, tier: i % 10 === 0 ? 'gateway' : 'sensor' } }, spec: {},
        status: {
          phase, since: seen, lastSeen: phase === 'Pending' ? null : seen, epoch: null, ackedRevision: 0,
          agent: phase === 'Pending' ? null : { version: i % 7 === 0 ? '0.0.9' : '0.1.0', os: 'linux', arch: i % 3 === 0 ? 'arm64' : 'x64', hostname: name },
        },
      });
      out.names.push(name);
      out.byPhase[phase]++;
      out.byZone[zone] = (out.byZone[zone] ?? 0) + 1;
      if (app) {
        await store.create<Workload>({
          kind: 'Workload', metadata: { name: `collector.${name}`, labels: { 'edgefleet.io/app': 'collector' } },
          spec: { nodeName: name, app: 'collector', generation: app.metadata.generation ?? 1, template: app.spec.template },
          status: { state: STATES[i % STATES.length]!, restarts: i % 4, generation: 1, observedAt: seen },
        });
        out.workloads++;
      }
      if (opts.devicesEvery && i % opts.devicesEvery === 0) {
        for (const n of [1, 2]) {
          await store.create<Device>({
            kind: 'Device', metadata: { name: `meter-${n}.${name}` },
            spec: { model: 'meter', nodeName: name, protocol: { name: 'virtual', config: {} }, properties: [], desired: {}, desiredVersion: 0, desiredMetadata: {}, modelSpec: METER_MODEL },
            status: { twin: { reported: { power: i }, version: 1, metadata: {} }, online: n === 1, lastSeen: seen },
          });
          out.devices++;
        }
      }
    }
  } finally {
    await store.close();
  }
  return out;
}
