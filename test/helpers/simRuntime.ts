import type { WorkloadState, WorkloadStatus } from '../../protocol/index.js';
import type { DesiredWorkload, ExecResult, Runtime, StatusListener } from '../../edgecore/runtime/runtime.js';

/**
 * The runtime double of the simulated fleet (the one double issue 5 allows): it "runs" a
 * workload instantly and reports Running, unless the shared `SimFailures` says this revision
 * crashes on this node, in which case it reports CrashLoop (or Failed). Everything else on the
 * edge (meta SQLite, outbox, cloud link) is real; only the process supervision is faked.
 */

export type FailureMode = 'CrashLoop' | 'Failed';

/** Which revisions crash on which nodes; shared by every node of a simulated fleet. */
export class SimFailures {
  /** `${app}:${revision}` (or `*:${revision}`) → nodes it crashes on. */
  private readonly rules = new Map<string, { nodes: Set<string> | 'all'; mode: FailureMode }>();
  private readonly listeners = new Set<() => void>();
  /**
   * How long a start takes before the status is reported (ms, per start). 0 by default; a few
   * hundred ms spread makes nodes sit in "updating" long enough for maxUnavailable to matter.
   */
  startDelayMs: () => number = () => 0;

  /** From now on `revision` crashes on `nodes` ('all' for every node); nodes already running it crash too. */
  fail(revision: number, nodes: Iterable<string> | 'all', opts: { app?: string; mode?: FailureMode } = {}): void {
    const key = `${opts.app ?? '*'}:${revision}`;
    const current = this.rules.get(key);
    const mode = opts.mode ?? 'CrashLoop';
    if (nodes === 'all' || current?.nodes === 'all') this.rules.set(key, { nodes: 'all', mode });
    else this.rules.set(key, { nodes: new Set([...(current?.nodes ?? []), ...nodes]), mode });
    for (const l of this.listeners) l();
  }

  /** Forgets every rule (revisions run fine again from the next start). */
  clear(): void {
    this.rules.clear();
    for (const l of this.listeners) l();
  }

  verdict(node: string, app: string, revision: number): FailureMode | undefined {
    for (const key of [`${app}:${revision}`, `*:${revision}`]) {
      const rule = this.rules.get(key);
      if (rule && (rule.nodes === 'all' || rule.nodes.has(node))) return rule.mode;
    }
    return undefined;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

interface Running { generation: number; templateKey: string; status: WorkloadStatus }

function pendingStatus(generation: number): WorkloadStatus {
  return { state: 'Pending', restarts: 0, generation, pid: null, ready: null, observedAt: new Date().toISOString() };
}

/** Pure: the status a double reports for a start of `generation` with the given verdict. */
export function simulatedStatus(generation: number, verdict: FailureMode | undefined, now: Date, restarts = 0): WorkloadStatus {
  const observedAt = now.toISOString();
  const state: WorkloadState = verdict ?? 'Running';
  if (state === 'Running') {
    return { state, restarts, generation, pid: null, startedAt: observedAt, finishedAt: null, exitCode: null, lastError: null, ready: null, observedAt };
  }
  return {
    state, restarts: Math.max(restarts, 3), generation, pid: null, startedAt: observedAt, finishedAt: observedAt, exitCode: 1, ready: null,
    lastError: state === 'CrashLoop' ? `simulated crash of revision ${generation}` : `simulated failure of revision ${generation}`,
    observedAt,
  };
}

export class RuntimeDouble implements Runtime {
  private readonly running = new Map<string, Running>();
  private readonly listeners: StatusListener[] = [];
  /** Every generation this node was asked to start, per workload, in order (what the edge actually ran). */
  readonly started = new Map<string, number[]>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(private readonly node: string, private readonly failures: SimFailures) {
    this.unsubscribe = failures.onChange(() => this.reevaluate());
  }

  async ensure(desired: DesiredWorkload): Promise<void> {
    if (this.closed) return;
    const templateKey = JSON.stringify(desired.template);
    const current = this.running.get(desired.name);
    if (current && current.generation === desired.generation && current.templateKey === templateKey) return;
    const history = this.started.get(desired.name) ?? [];
    history.push(desired.generation);
    this.started.set(desired.name, history);
    const entry: Running = { generation: desired.generation, templateKey, status: pendingStatus(desired.generation) };
    this.running.set(desired.name, entry);
    // Reported asynchronously, like a real runtime: never inside ensure(), maybe after a start delay.
    const settle = () => {
      if (this.closed || this.running.get(desired.name) !== entry) return;
      entry.status = simulatedStatus(entry.generation, this.failures.verdict(this.node, desired.name, entry.generation), new Date());
      this.emit(desired.name, entry.status);
    };
    const delay = this.failures.startDelayMs();
    if (delay > 0) setTimeout(settle, delay).unref();
    else setImmediate(settle);
  }

  /** A rule added after the start: a node already running a now-failing revision starts crashing. */
  private reevaluate(): void {
    for (const [name, r] of this.running) {
      if (r.status.state === 'Pending') continue; // decided when it settles
      const verdict = this.failures.verdict(this.node, name, r.generation);
      if ((verdict ?? 'Running') === r.status.state) continue;
      r.status = simulatedStatus(r.generation, verdict, new Date(), r.status.restarts + 1);
      this.emit(name, r.status);
    }
  }

  private emit(name: string, status: WorkloadStatus): void {
    for (const l of this.listeners) l(name, status);
  }

  async remove(name: string): Promise<void> {
    this.running.delete(name);
  }

  statuses(): Map<string, WorkloadStatus> {
    return new Map([...this.running].map(([name, r]) => [name, r.status]));
  }

  onStatus(listener: StatusListener): void {
    this.listeners.push(listener);
  }

  async readLogs(): Promise<string[]> { return []; }

  followLogs(): () => void { return () => undefined; }

  async exec(): Promise<ExecResult> {
    return { exitCode: null, stdout: '', stderr: 'the simulated runtime does not exec', timedOut: false };
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    this.running.clear();
  }
}
