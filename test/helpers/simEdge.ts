import { CloudLink, type LinkPhase } from '../../edgecore/link/cloudLink.js';
import type { BackoffPolicy } from '../../edgecore/link/backoff.js';
import { transitionEvent } from '../../edgecore/runtime/transitionEvent.js';
import { EDGEFLEET_VERSION, type WorkloadState, type WorkloadStatus } from '../../protocol/index.js';
import { RuntimeDouble, type SimFailures } from './simRuntime.js';
import type { SimEdgeState } from './simState.js';

/**
 * One simulated edge node: the real CloudLink over a real WebSocket, a local state (edgecore's
 * MetaStore SQLite file in the tests), and the runtime double. It is edgecore's agent minus the
 * status page and the device broker: desired set → runtime (serialized reconcile), runtime
 * status → outbox (with observedGeneration and the same transition events) → link.
 * Going offline stops the link (the cloud sees the socket close); coming back starts a new
 * link on the same state, so the hello carries the same epoch and last revision (a resume).
 */

export interface SimEdgeOptions {
  node: string;
  cloudUrl: string;
  credential: string;
  state: SimEdgeState;
  failures: SimFailures;
  heartbeatMs: number;
  backoff: BackoffPolicy;
  /** Send Started/BackOff/Failed events as edgecore does (one Event object in the store each). */
  events: boolean;
}

export class SimEdge {
  readonly runtime: RuntimeDouble;
  link: CloudLink | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private readonly lastState = new Map<string, WorkloadState>();
  private stopped = false;
  /** Sync frames applied (snapshot or delta) over the edge's life, across links. */
  framesApplied = 0;
  /** Called after every applied sync frame and every status the runtime reports. */
  onChange: (() => void) | undefined;

  constructor(private readonly opts: SimEdgeOptions) {
    this.runtime = new RuntimeDouble(opts.node, opts.failures);
    this.runtime.onStatus((name, status) => this.onWorkloadStatus(name, status));
  }

  get node(): string { return this.opts.node; }

  get online(): boolean { return this.link !== undefined; }

  get phase(): LinkPhase { return this.link?.phase ?? 'disconnected'; }

  /** Starts a link; resolves once it is connected and has applied the cloud's first sync frame. */
  connect(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error(`${this.node} is stopped`));
    if (this.link) return Promise.resolve();
    const link = new CloudLink({
      cloudUrl: this.opts.cloudUrl, node: this.opts.node, credential: this.opts.credential, state: this.opts.state,
      agent: { version: EDGEFLEET_VERSION, os: 'linux', arch: process.arch, hostname: this.opts.node },
      heartbeatMs: this.opts.heartbeatMs, backoff: this.opts.backoff,
    });
    this.link = link;
    const firstFrame = new Promise<void>((resolve) => {
      const onDesired = () => { if (link.phase === 'connected') { link.off('desired', onDesired); resolve(); } };
      link.on('desired', onDesired);
    });
    // On a resume with nothing new the cloud sends no frame: "connected" is then as good as it gets.
    const welcomed = new Promise<void>((resolve) => {
      const onPhase = (p: LinkPhase) => { if (p === 'connected') { link.off('phase', onPhase); resolve(); } };
      link.on('phase', onPhase);
    });
    link.on('desired', () => {
      this.framesApplied++;
      void this.reconcile();
    });
    link.start();
    return Promise.race([firstFrame, welcomed.then(() => new Promise<void>((r) => setTimeout(r, 50)))]);
  }

  /** Drops the link (the cloud sees the node go away); the runtime keeps running, as on a real edge. */
  async disconnect(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    await link?.stop();
  }

  /** Brings the runtime in line with the desired set, like EdgeAgent.reconcile. Serialized. */
  reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(async () => {
      if (this.stopped) return;
      const desired = this.opts.state.desiredWorkloads();
      const wanted = new Set(desired.map((w) => w.spec.app));
      for (const name of this.runtime.statuses().keys()) {
        if (!wanted.has(name)) {
          await this.runtime.remove(name);
          this.lastState.delete(name);
        }
      }
      for (const w of desired) {
        await this.runtime.ensure({ name: w.spec.app, generation: w.spec.generation, template: w.spec.template });
      }
      this.onChange?.();
    });
    return this.reconciling;
  }

  private onWorkloadStatus(name: string, reported: WorkloadStatus): void {
    const desired = this.stopped ? undefined : this.opts.state.desiredWorkload(name);
    if (!desired) return;
    const status: WorkloadStatus = { ...reported, observedGeneration: desired.metadata.generation ?? 0 };
    this.opts.state.enqueue('workloadStatus', name, { app: name, status });
    if (this.opts.events && this.lastState.get(name) !== status.state) {
      this.lastState.set(name, status.state);
      const event = transitionEvent(name, status);
      if (event) this.opts.state.enqueue('event', `${name}:${status.state}`, event);
    }
    this.link?.notifyOutbox();
    this.onChange?.();
  }

  /** The revision the cloud wants this node to run for `app` (from its local desired set). */
  assignedRevision(app: string): number | undefined {
    return this.opts.state.desiredWorkload(app)?.spec.generation;
  }

  /** What the runtime runs for `app`: revision and state. */
  running(app: string): { revision: number; state: WorkloadState } | undefined {
    const s = this.runtime.statuses().get(app);
    return s ? { revision: s.generation, state: s.state } : undefined;
  }

  /** Every revision of `app` this node ever started, in order. */
  startedRevisions(app: string): number[] {
    return this.runtime.started.get(app) ?? [];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.disconnect();
    await this.reconciling;
    await this.runtime.shutdown();
    this.opts.state.close();
  }
}
