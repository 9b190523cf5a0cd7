/**
 * One edge worker of the scale-out benchmark (forked by the coordinator): holds up to ~15,000
 * simulated edges, each a real CloudLink over a real WebSocket to the replica it was given, with
 * its durable state in memory. One process cannot hold more sockets than its open-file limit,
 * so the fleet is spread over several of these.
 *
 * It answers the coordinator's requests (ipc.ts) one by one and exits when told to stop or when
 * the coordinator goes away (no orphaned fleet holding sockets).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudLink, type LinkStats } from '../../../edgecore/link/cloudLink.js';
import { joinForCredential, JoinRefusedError } from '../../../edgecore/identity/join.js';
import { EDGEFLEET_VERSION } from '../../../protocol/index.js';
import { sumStats } from '../figures.js';
import { ApiClient, ApiRefusedError, connectFleet, mapLimit } from '../fleet.js';
import { MemoryLinkState } from '../memoryLinkState.js';
import { sampleSelf } from '../procStats.js';
import { installWireCounters, wireSnapshot } from '../wireCounters.js';
import {
  RequestEnvelopeSchema, type MoveResult, type ReplicaRef, type ReplyEnvelope, type WorkerRequest, type WorkerSample,
} from './ipc.js';

interface WorkerEdge {
  node: string;
  /** Index of the replica the current link goes to. */
  replica: number;
  credential: string;
  state: MemoryLinkState;
  link: CloudLink;
  /** The last welcome on the current link (absolute ms), with its mode. */
  welcome: { at: number; mode: string } | null;
}

interface MarkerWait {
  app: string;
  marker: string;
  ackedAt: (number | undefined)[];
  remaining: number;
  settled: boolean;
  done: Promise<number[]>;
  settle: (err?: Error) => void;
}

const now = () => performance.timeOrigin + performance.now();
const send = (message: ReplyEnvelope) => new Promise<void>((resolve) => process.send!(message, undefined, {}, () => resolve()));
const progress = (line: string) => void send({ kind: 'progress', line });

let replicas: ReplicaRef[] = [];
let heartbeatMs = 30_000;
let connectConcurrency = 200;
const edges: WorkerEdge[] = [];
/** Stats of links replaced by a move, so totals keep counting across it. */
const retired: LinkStats[] = [];
const waits = new Map<string, MarkerWait>();

async function withRetries<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof JoinRefusedError || err instanceof ApiRefusedError || attempt >= 5) throw new Error(`${what}: ${(err as Error).message}`);
      // A replica under a join wave answers 503 now and then: back off and try again.
      await sleep(250 * attempt);
    }
  }
}

function holdsMarker(edge: WorkerEdge, app: string, marker: string): boolean {
  return edge.state.desired.get(`${app}.${edge.node}`)?.spec.template.args?.[0] === marker;
}

/** Desired-state changes reach the waits through the edge, not the link, so a move does not lose them. */
function onDesired(index: number): void {
  const edge = edges[index]!;
  for (const wait of waits.values()) {
    if (wait.settled || wait.ackedAt[index] !== undefined || !holdsMarker(edge, wait.app, wait.marker)) continue;
    wait.ackedAt[index] = now();
    if (--wait.remaining === 0) wait.settle();
  }
}

/** A link for edge `index`; its callbacks look the edge up when they fire, so they follow a move. */
function makeLink(index: number, url: string, node: string, credential: string, state: MemoryLinkState): CloudLink {
  const link = new CloudLink({
    cloudUrl: url, node, credential, state,
    agent: { version: EDGEFLEET_VERSION, os: 'linux', arch: process.arch, hostname: node },
    heartbeatMs,
    // The welcome's mode (resume or snapshot) is only visible in CloudLink's 'cloud link up' log line.
    log: {
      info: (o: object, m?: string) => {
        const edge = edges[index];
        if (m === 'cloud link up' && edge?.link === link) edge.welcome = { at: now(), mode: String((o as { mode?: unknown }).mode) };
      },
      warn: () => undefined,
    },
  });
  link.on('desired', () => onDesired(index));
  return link;
}

async function setup(req: Extract<WorkerRequest, { type: 'setup' }>): Promise<{ mintMs: number; joinMs: number }> {
  replicas = req.replicas;
  heartbeatMs = req.heartbeatMs;
  connectConcurrency = req.connectConcurrency;
  const apis = replicas.map((r) => new ApiClient(r.url, r.adminToken));
  const n = req.nodes.length;
  const every = Math.max(1, Math.floor(n / 5));
  let t = performance.now();
  let done = 0;
  const tokens = await mapLimit(req.nodes, req.restConcurrency, async ({ node, replica }) => {
    const token = await withRetries(`minting a token for ${node}`, () => apis[replica]!.mintToken(node));
    if (++done % every === 0) progress(`tokens ${done}/${n}`);
    return token;
  });
  const mintMs = performance.now() - t;
  t = performance.now();
  done = 0;
  const credentials = await mapLimit(req.nodes, req.restConcurrency, async ({ node, replica }, i) => {
    const credential = await withRetries(`joining ${node}`, () => joinForCredential(replicas[replica]!.url, node, tokens[i]!));
    if (++done % every === 0) progress(`joined ${done}/${n}`);
    return credential;
  });
  const joinMs = performance.now() - t;
  req.nodes.forEach(({ node, replica }, i) => {
    const state = new MemoryLinkState(node);
    const credential = credentials[i]!;
    edges.push({ node, replica, credential, state, link: makeLink(i, replicas[replica]!.url, node, credential, state), welcome: null });
  });
  return { mintMs, joinMs };
}

function sample(): WorkerSample {
  const connectedByReplica = replicas.map(() => 0);
  for (const edge of edges) if (edge.link.phase === 'connected') connectedByReplica[edge.replica]!++;
  return {
    stats: sumStats([...retired, ...edges.map((e) => e.link.stats)]),
    wire: wireSnapshot(),
    self: sampleSelf(),
    foreignObjects: edges.reduce((sum, e) => sum + e.state.foreignObjects, 0),
    edges: edges.length,
    connectedByReplica,
  };
}

function arm(req: Extract<WorkerRequest, { type: 'arm' }>): void {
  if (waits.has(req.waitId)) throw new Error(`wait ${req.waitId} is already armed`);
  let settle: (err?: Error) => void = () => undefined;
  const wait: MarkerWait = {
    app: req.app, marker: req.marker, ackedAt: edges.map(() => undefined), remaining: edges.length, settled: false,
    done: Promise.resolve([]), settle: (err) => settle(err),
  };
  wait.done = new Promise<number[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      const missing = edges.filter((_, i) => wait.ackedAt[i] === undefined).map((e) => e.node);
      settle(new Error(`${missing.length}/${edges.length} edges did not get "${req.marker}" within ${req.timeoutMs} ms (e.g. ${missing.slice(0, 5).join(', ')})`));
    }, req.timeoutMs);
    settle = (err) => {
      if (wait.settled) return;
      wait.settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(wait.ackedAt as number[]);
    };
  });
  // Callers attach later (collect); an early timeout must not count as an unhandled rejection.
  wait.done.catch(() => undefined);
  waits.set(req.waitId, wait);
  edges.forEach((edge, i) => {
    if (holdsMarker(edge, req.app, req.marker)) { wait.ackedAt[i] = now(); wait.remaining--; }
  });
  if (wait.remaining === 0) wait.settle();
}

async function move(req: Extract<WorkerRequest, { type: 'move' }>): Promise<MoveResult> {
  const moving = edges.flatMap((edge, i) => (edge.replica === req.from ? [i] : []));
  let next = 0;
  for (const i of moving) {
    const edge = edges[i]!;
    const old = edge.link;
    retired.push(old.stats);
    void old.stop();
    edge.replica = req.to[next++ % req.to.length]!;
    edge.welcome = null;
    edge.link = makeLink(i, replicas[edge.replica]!.url, edge.node, edge.credential, edge.state);
    edge.link.start();
  }
  const deadline = Date.now() + req.timeoutMs;
  while (Date.now() < deadline && moving.some((i) => edges[i]!.welcome === null)) await sleep(100);
  const welcomes = moving.flatMap((i) => (edges[i]!.welcome ? [edges[i]!.welcome!] : []));
  return {
    moved: moving.length,
    welcomedAt: welcomes.map((w) => w.at),
    resumes: welcomes.filter((w) => w.mode === 'resume').length,
    snapshots: welcomes.filter((w) => w.mode === 'snapshot').length,
    notWelcomed: moving.length - welcomes.length,
  };
}

async function stopAll(): Promise<void> {
  await Promise.race([mapLimit(edges, 1000, (edge) => edge.link.stop()), sleep(20_000)]);
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.type) {
    case 'setup': return setup(req);
    case 'connect': return { connectMs: await connectFleet(edges, { connectConcurrency, progress }) };
    case 'sample': return sample();
    case 'arm': arm(req); return {};
    case 'collect': {
      const wait = waits.get(req.waitId);
      if (!wait) throw new Error(`no wait ${req.waitId} (never armed, or already collected)`);
      try {
        return { ackedAt: await wait.done };
      } finally {
        waits.delete(req.waitId);
      }
    }
    case 'move': return move(req);
    case 'stop': await stopAll(); return {};
  }
}

installWireCounters();
process.on('message', (raw: unknown) => {
  const parsed = RequestEnvelopeSchema.safeParse(raw);
  if (!parsed.success) {
    progress(`ignoring a message that does not parse: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return;
  }
  const { id, request } = parsed.data;
  handle(request).then(
    async (result) => {
      await send({ kind: 'reply', id, ok: true, result });
      if (request.type === 'stop') process.exit(0);
    },
    (err: unknown) => void send({ kind: 'reply', id, ok: false, error: (err as Error).message }),
  );
});
// The coordinator is gone (crash, kill): release the sockets rather than linger as an orphan.
process.on('disconnect', () => { void stopAll().finally(() => process.exit(1)); });
