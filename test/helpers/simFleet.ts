import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JoinRefusedError, joinForCredential } from '../../edgecore/identity/join.js';
import { META_KEYS, MetaStore } from '../../edgecore/meta/metaStore.js';
import { ApiClient, ApiRefusedError, mapLimit, nodeNames } from '../bench/fleet.js';
import { SimEdge } from './simEdge.js';
import { SimFailures, type FailureMode } from './simRuntime.js';
import { MemoryEdgeState, type SimEdgeState } from './simState.js';

/**
 * N simulated edge nodes in one process (issue 5's test fleet). Each node joins with a real
 * token through the real join flow, keeps a real MetaStore SQLite file under a temp dir (or,
 * for the 10,000-node benchmark, `MemoryEdgeState`), and talks to cloudcore over its own
 * WebSocket with the real CloudLink. Only the workload runtime is a double (`SimFailures`
 * decides which revisions crash where).
 */

export interface SimFleetOptions {
  /** Where the edges connect (may be a proxy in front of cloudcore). */
  cloudUrl: string;
  /** Operator API base URL and admin token (for minting join tokens and labelling nodes). */
  apiUrl: string;
  adminToken: string;
  /** Node names, or a count (`edge-001` …). */
  nodes: string[] | number;
  /** 'sqlite': a MetaStore file per node (default); 'memory': MemoryEdgeState. */
  state?: 'sqlite' | 'memory';
  /** Parent of the per-node data dirs; a fresh temp dir (removed by stop) by default. */
  dataRoot?: string;
  heartbeatMs?: number;
  /** How many joins / connects run at once. */
  concurrency?: number;
  /** Labels set on every node right after it joined (before any link connects). */
  labels?: (node: string, index: number) => Record<string, string> | undefined;
  events?: boolean;
  progress?: (line: string) => void;
}

export class SimFleet {
  readonly failures = new SimFailures();
  readonly edges = new Map<string, SimEdge>();
  readonly api: ApiClient;
  private readonly ownsDataRoot: boolean;
  readonly dataRoot: string;

  private constructor(private readonly opts: SimFleetOptions) {
    this.api = new ApiClient(opts.apiUrl, opts.adminToken);
    this.ownsDataRoot = opts.dataRoot === undefined;
    this.dataRoot = opts.dataRoot ?? mkdtempSync(join(tmpdir(), 'ef-simfleet-'));
  }

  /** Joins every node (token + join + labels) and connects every link; resolves when all are synced. */
  static async start(opts: SimFleetOptions): Promise<SimFleet> {
    const fleet = new SimFleet(opts);
    try {
      await fleet.joinAll(typeof opts.nodes === 'number' ? nodeNames(opts.nodes) : opts.nodes);
      await fleet.connect([...fleet.edges.keys()]);
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  get nodes(): string[] { return [...this.edges.keys()]; }

  edge(node: string): SimEdge {
    const edge = this.edges.get(node);
    if (!edge) throw new Error(`no simulated node "${node}"`);
    return edge;
  }

  private async joinAll(nodes: string[]): Promise<void> {
    const concurrency = this.opts.concurrency ?? 32;
    const every = Math.max(1, Math.floor(nodes.length / 10));
    let done = 0;
    await mapLimit(nodes, concurrency, async (node, index) => {
      const token = await retry(`token for ${node}`, () => this.api.mintToken(node));
      const credential = await retry(`join of ${node}`, () => joinForCredential(this.opts.cloudUrl, node, token));
      const labels = this.opts.labels?.(node, index);
      if (labels && Object.keys(labels).length > 0) await this.label([node], labels);
      this.edges.set(node, new SimEdge({
        node, cloudUrl: this.opts.cloudUrl, credential, state: this.openState(node), failures: this.failures,
        heartbeatMs: this.opts.heartbeatMs ?? 2000, backoff: { baseMs: 100, maxMs: 1000 }, events: this.opts.events ?? true,
      }));
      if (++done % every === 0) this.opts.progress?.(`joined ${done}/${nodes.length}`);
    });
  }

  private openState(node: string): SimEdgeState {
    if (this.opts.state === 'memory') return new MemoryEdgeState(node);
    const dir = join(this.dataRoot, node);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const meta = MetaStore.open(join(dir, 'edge.db'));
    meta.setValue(META_KEYS.node, node);
    return meta;
  }

  /** Connects the links of `nodes` (bounded concurrency); resolves when each is connected and synced. */
  async connect(nodes: string[]): Promise<void> {
    const every = Math.max(1, Math.floor(nodes.length / 10));
    let done = 0;
    await mapLimit(nodes, this.opts.concurrency ?? 32, async (node) => {
      await withTimeout(this.edge(node).connect(), 60_000, `${node} did not connect within 60 s`);
      if (++done % every === 0) this.opts.progress?.(`connected ${done}/${nodes.length}`);
    });
  }

  /** Takes `nodes` offline: their links close, their runtimes keep running what they have. */
  async offline(nodes: Iterable<string>): Promise<void> {
    await Promise.all([...nodes].map((n) => this.edge(n).disconnect()));
  }

  /** Brings `nodes` back on the same local state (hello with the same epoch: a resume). */
  online(nodes: Iterable<string>): Promise<void> {
    return this.connect([...nodes]);
  }

  /** From now on `revision` crashes on `nodes` (nodes already running it start crashing too). */
  fail(revision: number, nodes: Iterable<string> | 'all', opts: { app?: string; mode?: FailureMode } = {}): void {
    this.failures.fail(revision, nodes, opts);
  }

  /** Merges labels into nodes via PATCH /nodes/{n} (null removes a label). */
  async label(nodes: string[], labels: Record<string, string | null>): Promise<void> {
    await mapLimit(nodes, this.opts.concurrency ?? 32, (node) =>
      retry(`labels of ${node}`, () => this.api.request('PATCH', `/nodes/${node}`, { metadata: { labels } })));
  }

  /** Revision each node's runtime runs for `app` (undefined: not running it). */
  runningRevisions(app: string): Map<string, number | undefined> {
    return new Map(this.nodes.map((n) => [n, this.edge(n).running(app)?.revision]));
  }

  /** Nodes whose runtime runs `app` at `revision` in state Running. */
  nodesRunning(app: string, revision: number): string[] {
    return this.nodes.filter((n) => {
      const r = this.edge(n).running(app);
      return r?.revision === revision && r.state === 'Running';
    });
  }

  /** Every revision of `app` each node ever started. */
  startedRevisions(app: string): Map<string, number[]> {
    return new Map(this.nodes.map((n) => [n, this.edge(n).startedRevisions(app)]));
  }

  async stop(): Promise<void> {
    await mapLimit([...this.edges.values()], 200, (e) => e.stop());
    if (this.ownsDataRoot) rmSync(this.dataRoot, { recursive: true, force: true });
  }
}

/** Retries transient failures (a busy cloudcore); a refusal (4xx) is final. */
async function retry<T>(what: string, fn: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const final = err instanceof ApiRefusedError || err instanceof JoinRefusedError;
      if (final || attempt >= attempts) throw new Error(`${what}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); }),
  ]);
}
