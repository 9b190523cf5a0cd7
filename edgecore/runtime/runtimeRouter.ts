import type { WorkloadStatus, WorkloadTemplate } from '../../protocol/index.js';
import type { DesiredWorkload, ExecResult, Runtime, StatusListener } from './runtime.js';

type RuntimeKind = WorkloadTemplate['runtime'];

/**
 * Sends each workload to the runtime its template names (process, container). A node that
 * has no runtime of that kind configured (no container engine, say) reports the workload
 * Failed with the reason instead of silently ignoring it.
 */
export class RuntimeRouter implements Runtime {
  private readonly owner = new Map<string, RuntimeKind>();
  private readonly unplaced = new Map<string, WorkloadStatus>();
  private readonly listeners: StatusListener[] = [];

  private readonly runtimes: Partial<Record<RuntimeKind, Runtime>> = {};

  constructor(runtimes: Partial<Record<RuntimeKind, Runtime>>) {
    for (const [kind, runtime] of Object.entries(runtimes) as [RuntimeKind, Runtime][]) this.add(kind, runtime);
  }

  /** Adds a runtime once it is loaded (the container runtime is imported only where an engine is configured). */
  add(kind: RuntimeKind, runtime: Runtime): void {
    if (this.runtimes[kind]) throw new Error(`a ${kind} runtime is already configured`);
    this.runtimes[kind] = runtime;
    runtime.onStatus((name, status) => { for (const l of this.listeners) l(name, status); });
  }

  async ensure(desired: DesiredWorkload): Promise<void> {
    const kind = desired.template.runtime;
    const previous = this.owner.get(desired.name);
    if (previous && previous !== kind) await this.runtimes[previous]?.remove(desired.name);
    const runtime = this.runtimes[kind];
    this.owner.set(desired.name, kind);
    if (!runtime) {
      return this.markFailed(desired, `this node has no ${kind} runtime configured${kind === 'container' ? ' (start edgecore with --container-engine <socket>)' : ''}`);
    }
    this.unplaced.delete(desired.name);
    await runtime.ensure(desired);
  }

  /** A workload that cannot be started at all (no runtime, missing config): stop what runs and report why. */
  async markFailed(desired: DesiredWorkload, reason: string): Promise<void> {
    const previous = this.owner.get(desired.name);
    if (previous) await this.runtimes[previous]?.remove(desired.name);
    this.owner.delete(desired.name);
    const known = this.unplaced.get(desired.name);
    if (known && known.lastError === reason && known.generation === desired.generation) return;
    const status: WorkloadStatus = { state: 'Failed', restarts: 0, generation: desired.generation, observedAt: new Date().toISOString(), lastError: reason };
    this.unplaced.set(desired.name, status);
    for (const l of this.listeners) l(desired.name, status);
  }

  async remove(name: string): Promise<void> {
    const kind = this.owner.get(name);
    this.owner.delete(name);
    this.unplaced.delete(name);
    if (kind) await this.runtimes[kind]?.remove(name);
  }

  statuses(): Map<string, WorkloadStatus> {
    const all = new Map(this.unplaced);
    for (const runtime of Object.values(this.runtimes)) for (const [name, s] of runtime.statuses()) all.set(name, s);
    return all;
  }

  onStatus(listener: StatusListener): void { this.listeners.push(listener); }

  async readLogs(name: string, tail: number): Promise<string[]> {
    const runtime = this.ownerOf(name);
    return runtime ? runtime.readLogs(name, tail) : [];
  }

  followLogs(name: string, onLines: (lines: string[]) => void): () => void {
    return this.ownerOf(name)?.followLogs(name, onLines) ?? (() => undefined);
  }

  exec(name: string, command: string[], opts: { timeoutMs: number; maxOutputBytes: number }): Promise<ExecResult> {
    const runtime = this.ownerOf(name);
    if (!runtime) return Promise.reject(new Error(`workload "${name}" is not running on this node`));
    return runtime.exec(name, command, opts);
  }

  private ownerOf(name: string): Runtime | undefined {
    const kind = this.owner.get(name);
    return kind ? this.runtimes[kind] : undefined;
  }

  async shutdown(opts: { stopWorkloads: boolean }): Promise<void> {
    await Promise.all(Object.values(this.runtimes).map((r) => r.shutdown(opts)));
  }
}
