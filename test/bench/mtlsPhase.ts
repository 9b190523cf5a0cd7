import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { joinCloud } from '../../edgecore/identity/join.js';
import type { StoredIdentity } from '../../edgecore/identity/identityStore.js';
import { renewIdentity } from '../../edgecore/identity/renewIdentity.js';
import { CloudLink, type LinkPhase } from '../../edgecore/link/cloudLink.js';
import type { LinkAuth } from '../../edgecore/link/linkAuth.js';
import { EDGEFLEET_VERSION } from '../../protocol/index.js';
import { startCloudcoreChild, type CloudcoreChild } from './cloudcoreProcess.js';
import { ApiClient, connectFleet, mapLimit, type SimulatedEdge } from './fleet.js';
import { measureIdle, settleCloud, type IdleResult, type Probe } from './measure.js';
import { MemoryLinkState } from './memoryLinkState.js';
import { clockTicksPerSecond, procDelta, round, sampleProcess, type ProcDelta } from './procStats.js';

/**
 * The fan-out benchmark's mutual-TLS phase: the same simulated fleet against a cloudcore on
 * HTTPS (its own CA, the default), every node joined with a pinned token and a CSR and linked
 * with its client certificate. It measures what the plain run beside it measures at connect and
 * idle, then a mass rotation: every node renews (new key, CSR, POST /hub/v1/renew over mTLS) at
 * a random moment within `rotationSeconds` and reconnects its link with the new certificate,
 * as edgecore's renewal part does.
 */
export interface MtlsOptions {
  nodes: string[];
  heartbeatMs: number;
  heartbeatSeconds: number;
  restConcurrency: number;
  connectConcurrency: number;
  idleSeconds: number;
  rotationSeconds: number;
  offlineAfterSeconds: number;
  dataDir: string;
  logPath: string;
  log: (line: string) => void;
  /** Lets the caller release what the phase holds, however the run ends. */
  hold: (cloud: CloudcoreChild, edges: SimulatedEdge[]) => void;
}

export interface RotationResult {
  seconds: number;
  /** Nodes that renewed and linked again with the new certificate before the bound; the rest. */
  renewed: number;
  notRenewedInTime: number;
  /** From the start of the window until the last of those relinked. */
  allRenewedMs: number;
  renewalMs: { p50: number; p99: number; max: number };
  failures: number;
  cloud: ProcDelta;
}

export interface MtlsResult {
  nodes: number;
  joinMs: number;
  connectMs: number;
  /** Links established per second while connecting (each a full TLS handshake with a client certificate). */
  handshakesPerSecond: number;
  setupCloud: ProcDelta;
  idle: IdleResult | null;
  rotation: RotationResult;
  cloudRssEndMiB: number;
}

export async function measureMtls(opts: MtlsOptions): Promise<MtlsResult> {
  const cloud = await startCloudcoreChild({ dataDir: opts.dataDir, logPath: opts.logPath, offlineAfterSeconds: opts.offlineAfterSeconds, readyTimeoutMs: 30_000, tls: true });
  const ca = readFileSync(join(opts.dataDir, 'pki', 'ca.crt'), 'utf8');
  const api = new ApiClient(cloud.url, cloud.adminToken, undefined, ca);
  const clockTicks = clockTicksPerSecond();
  const setup0 = sampleProcess(cloud.pid, clockTicks);
  const identities = new Map<string, StoredIdentity>();
  let t = performance.now();
  let done = 0;
  const every = Math.max(1, Math.floor(opts.nodes.length / 10));
  await mapLimit(opts.nodes, opts.restConcurrency, async (node) => {
    const token = await api.mintToken(node);
    identities.set(node, await joinCloud({ cloudUrl: cloud.url, node, token, allowUnpinnedToken: false, warn: () => undefined }));
    if (++done % every === 0) opts.log(`mTLS: joined ${done}/${opts.nodes.length}`);
  });
  const joinMs = performance.now() - t;
  const edges = opts.nodes.map((node): SimulatedEdge => {
    const state = new MemoryLinkState(node);
    const auth = (): LinkAuth => {
      const id = identities.get(node)!;
      if (id.mode !== 'certificate') throw new Error(`${node} joined without a certificate`);
      return { mode: 'certificate', ca: id.caBundle, cert: id.certPem, key: id.keyPem };
    };
    const link = new CloudLink({
      cloudUrl: cloud.url, node, state, auth, heartbeatMs: opts.heartbeatMs,
      agent: { version: EDGEFLEET_VERSION, os: 'linux', arch: process.arch, hostname: node },
    });
    return { node, state, link };
  });
  opts.hold(cloud, edges);
  t = performance.now();
  const connectMs = await connectFleet(edges, { connectConcurrency: opts.connectConcurrency, progress: (line) => opts.log(`mTLS: ${line}`) });
  const setupCloud = procDelta(setup0, sampleProcess(cloud.pid, clockTicks));
  const probe: Probe = { cloudPid: cloud.pid, cloudSpawnedAt: cloud.spawnedAt, clockTicks, edges };
  await settleCloud(probe);
  let idle: IdleResult | null = null;
  if (opts.idleSeconds > 0) {
    opts.log(`mTLS: idle for ${opts.idleSeconds} s`);
    idle = await measureIdle(probe, opts.idleSeconds, opts.heartbeatSeconds);
  }
  opts.log(`mTLS: mass rotation, every node renews within ${opts.rotationSeconds} s`);
  const rotation = await rotateAll(edges, identities, cloud, opts.rotationSeconds, clockTicks);
  return {
    nodes: opts.nodes.length, joinMs: round(joinMs, 0), connectMs: round(connectMs, 0),
    handshakesPerSecond: round(opts.nodes.length / (connectMs / 1000), 1),
    setupCloud, idle, rotation, cloudRssEndMiB: round(sampleProcess(cloud.pid, clockTicks).rssBytes / 2 ** 20, 1),
  };
}

/**
 * Every node renews at a random moment in the window, then reconnects once with its new
 * certificate. The wait is bounded (the window plus two minutes): nodes not renewed and relinked
 * by then are counted, not waited for, so a simulator that cannot keep up says so.
 */
async function rotateAll(edges: SimulatedEdge[], identities: Map<string, StoredIdentity>, cloud: CloudcoreChild, seconds: number, clockTicks: number): Promise<RotationResult> {
  const before = sampleProcess(cloud.pid, clockTicks);
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000 + 120_000;
  const durations: number[] = [];
  let failures = 0;
  let lastDone = t0;
  const renewOne = async (edge: SimulatedEdge): Promise<void> => {
    await sleep(Math.random() * seconds * 1000);
    const started = performance.now();
    for (let attempt = 1; attempt <= 5 && performance.now() < deadline; attempt++) {
      try {
        const renewed = await renewIdentity(cloud.url, edge.node, identities.get(edge.node)!, new Date());
        identities.set(edge.node, renewed);
        const relinked = waitForPhase(edge.link, 'connected');
        edge.link.reconnect();
        await relinked;
        durations.push(performance.now() - started);
        lastDone = performance.now();
        return;
      } catch {
        failures++;
        await sleep(500 * attempt);
      }
    }
  };
  const all = Promise.all(edges.map(renewOne));
  await Promise.race([all, sleep(Math.max(0, deadline - performance.now()))]);
  const cloud1 = sampleProcess(cloud.pid, clockTicks);
  durations.sort((a, b) => a - b);
  const at = (q: number) => round(durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] ?? 0, 1);
  return {
    seconds, renewed: durations.length, notRenewedInTime: edges.length - durations.length,
    allRenewedMs: round(lastDone - t0, 0), renewalMs: { p50: at(0.5), p99: at(0.99), max: at(1) }, failures,
    cloud: procDelta(before, cloud1),
  };
}

function waitForPhase(link: CloudLink, phase: LinkPhase): Promise<void> {
  return new Promise((resolve) => {
    let left = false;
    const onPhase = (p: LinkPhase) => {
      if (p !== phase) { left = true; return; }
      if (!left) return; // still the old link's "connected"
      link.off('phase', onPhase);
      resolve();
    };
    link.on('phase', onPhase);
  });
}

export function mtlsText(r: MtlsResult, plainIdle: IdleResult | null): string[] {
  const idle = (i: IdleResult | null) => (i ? `CPU ${i.cloud.cpuPercentOfOneCore.toFixed(1)} % of one core, RSS ${i.cloud.rssAfterMiB.toFixed(1)} MiB` : 'not measured');
  return [
    `mutual TLS (${r.nodes} nodes, cloudcore on HTTPS with its own CA):`,
    `  join (pinned token + CSR) ${r.joinMs} ms; connect ${r.connectMs} ms = ${r.handshakesPerSecond} mTLS links/s`,
    `  cloudcore during setup: CPU ${r.setupCloud.cpuSeconds.toFixed(1)} s, RSS ${r.setupCloud.rssAfterMiB.toFixed(1)} MiB`,
    `  idle: mTLS ${idle(r.idle)}; plain WebSocket in this run ${idle(plainIdle)}`,
    `  rotation within ${r.rotation.seconds} s: ${r.rotation.renewed} renewed and relinked (${r.rotation.notRenewedInTime} not within the window + 120 s), the last after ${r.rotation.allRenewedMs} ms; renewal+relink p50 ${r.rotation.renewalMs.p50} / p99 ${r.rotation.renewalMs.p99} / max ${r.rotation.renewalMs.max} ms, `
      + `${r.rotation.failures} failed attempts; cloudcore CPU ${r.rotation.cloud.cpuSeconds.toFixed(1)} s (${r.rotation.cloud.cpuPercentOfOneCore.toFixed(1)} % of one core), RSS ${r.rotation.cloud.rssAfterMiB.toFixed(1)} MiB`,
  ];
}
