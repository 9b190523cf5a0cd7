import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudLink } from '../../edgecore/link/cloudLink.js';
import { joinForCredential, JoinRefusedError } from '../../edgecore/identity/join.js';
import { EDGEFLEET_VERSION } from '../../protocol/index.js';
import { MemoryLinkState } from './memoryLinkState.js';

/**
 * N simulated edges in one process: each is the real CloudLink over a real WebSocket, with
 * its durable state in memory. Also the small REST client the benchmark needs.
 */

export interface SimulatedEdge {
  node: string;
  state: MemoryLinkState;
  link: CloudLink;
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Retries transient failures (network errors, 5xx); a refusal is final. */
async function withRetries<T>(what: string, attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof JoinRefusedError || err instanceof ApiRefusedError || attempt >= attempts) {
        throw new Error(`${what}: ${(err as Error).message}`);
      }
      await sleep(200 * attempt);
    }
  }
}

export class ApiRefusedError extends Error {}

export class ApiClient {
  /**
   * `localAddress`: the source address of its connections (a link cut lets that one through).
   * `ca`: the cloud's CA bundle, for a cloudcore on HTTPS.
   */
  constructor(private readonly baseUrl: string, private readonly adminToken: string, private readonly localAddress?: string, private readonly ca?: string) {}

  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = this.ca === undefined ? httpRequest : httpsRequest;
      const req = request(new URL(`/api/v1${path}`, this.baseUrl), {
        ...(this.ca === undefined ? {} : { ca: this.ca }),
        method,
        headers: { authorization: `Bearer ${this.adminToken}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(this.localAddress ? { localAddress: this.localAddress } : {}),
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
    if (status >= 400 && status < 500) throw new ApiRefusedError(`${method} ${path}: HTTP ${status} ${text}`);
    if (status < 200 || status >= 300) throw new Error(`${method} ${path}: HTTP ${status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  async mintToken(node: string): Promise<string> {
    const body = await this.request('POST', '/tokens', { node, ttlSeconds: 3600 });
    const token = (body as { token?: unknown }).token;
    if (typeof token !== 'string') throw new Error(`POST /tokens for ${node}: no token in answer`);
    return token;
  }
}

export function nodeNames(count: number): string[] {
  const width = String(count).length;
  return Array.from({ length: count }, (_, i) => `edge-${String(i + 1).padStart(width, '0')}`);
}

export interface SetupTimings {
  mintMs: number;
  joinMs: number;
  connectMs: number;
}

export interface FleetOptions {
  cloudUrl: string;
  api: ApiClient;
  nodes: string[];
  heartbeatMs: number;
  restConcurrency: number;
  connectConcurrency: number;
  /** Called with a short progress line now and then. */
  progress: (line: string) => void;
}

/** Mints a token for every node and joins each; returns the (not yet started) edges. */
export async function prepareFleet(opts: FleetOptions): Promise<{ edges: SimulatedEdge[]; mintMs: number; joinMs: number }> {
  const n = opts.nodes.length;
  const every = Math.max(1, Math.floor(n / 10));
  let t = performance.now();
  let done = 0;
  const tokens = await mapLimit(opts.nodes, opts.restConcurrency, async (node) => {
    const token = await withRetries(`minting a token for ${node}`, 3, () => opts.api.mintToken(node));
    if (++done % every === 0) opts.progress(`tokens ${done}/${n}`);
    return token;
  });
  const mintMs = performance.now() - t;

  t = performance.now();
  done = 0;
  const credentials = await mapLimit(opts.nodes, opts.restConcurrency, async (node, i) => {
    const credential = await withRetries(`joining ${node}`, 3, () => joinForCredential(opts.cloudUrl, node, tokens[i]!));
    if (++done % every === 0) opts.progress(`joined ${done}/${n}`);
    return credential;
  });
  const joinMs = performance.now() - t;

  const edges = opts.nodes.map((node, i): SimulatedEdge => {
    const state = new MemoryLinkState(node);
    const link = new CloudLink({
      cloudUrl: opts.cloudUrl, node, credential: credentials[i]!, state,
      agent: { version: EDGEFLEET_VERSION, os: 'linux', arch: process.arch, hostname: node },
      heartbeatMs: opts.heartbeatMs,
    });
    return { node, state, link };
  });
  return { edges, mintMs, joinMs };
}

/** Starts every link and resolves once each is connected and has applied its first snapshot. */
export async function connectFleet(edges: SimulatedEdge[], opts: Pick<FleetOptions, 'connectConcurrency' | 'progress'>): Promise<number> {
  const every = Math.max(1, Math.floor(edges.length / 10));
  // Ramp up: at most `connectConcurrency` links between "start" and "snapshot applied", so the
  // listen backlog never overflows into SYN retries that would only measure the kernel.
  const t = performance.now();
  let done = 0;
  await mapLimit(edges, opts.connectConcurrency, async (edge) => {
    const ready = snapshotApplied(edge.link);
    edge.link.start();
    await ready;
    if (++done % every === 0) opts.progress(`connected ${done}/${edges.length}`);
  });
  return performance.now() - t;
}

function snapshotApplied(link: CloudLink): Promise<void> {
  return new Promise((resolve) => {
    const onDesired = (e: { mode: 'snapshot' | 'delta' }) => {
      if (e.mode !== 'snapshot' || link.phase !== 'connected') return;
      link.off('desired', onDesired);
      resolve();
    };
    link.on('desired', onDesired);
  });
}

/**
 * Resolves with each edge's latency (ms from `t0`) until its desired state holds
 * `<app>.<node>` with `marker` as first template argument. The link has acked the frame by
 * the time `desired` fires (CloudLink acks right after applying). Rejects after `timeoutMs`
 * naming how many edges are still missing.
 */
export function awaitTemplateEverywhere(edges: SimulatedEdge[], app: string, marker: string, t0: number, timeoutMs: number): Promise<number[]> {
  const latencies = new Array<number | undefined>(edges.length);
  let remaining = edges.length;
  const has = (edge: SimulatedEdge) => edge.state.desired.get(`${app}.${edge.node}`)?.spec.template.args?.[0] === marker;
  const listeners: (() => void)[] = [];
  const detach = () => edges.forEach((edge, i) => edge.link.off('desired', listeners[i]!));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      detach();
      const missing = edges.filter((_, i) => latencies[i] === undefined).map((e) => e.node);
      reject(new Error(`${missing.length}/${edges.length} edges did not get "${marker}" within ${timeoutMs} ms (e.g. ${missing.slice(0, 5).join(', ')})`));
    }, timeoutMs);
    edges.forEach((edge, i) => {
      listeners[i] = () => {
        if (latencies[i] !== undefined || !has(edge)) return;
        latencies[i] = performance.now() - t0;
        if (--remaining === 0) {
          clearTimeout(timer);
          detach();
          resolve(latencies as number[]);
        }
      };
      edge.link.on('desired', listeners[i]!);
    });
  });
}

export async function stopFleet(edges: SimulatedEdge[]): Promise<void> {
  await mapLimit(edges, 1000, (edge) => edge.link.stop());
}
