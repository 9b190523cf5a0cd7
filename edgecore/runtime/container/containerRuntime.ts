import type { WorkloadStatus } from '../../../protocol/index.js';
import { KeyedQueue } from '../keyedQueue.js';
import type { RuntimeLogger } from '../processRuntime.js';
import { DEFAULT_BACKOFF, type BackoffSettings } from '../restartPolicy.js';
import type { DesiredWorkload, ExecResult, Runtime, StatusListener } from '../runtime.js';
import { chooseAdoptions, ownedFilters, readOwnedLabels, templateHash } from './containerSpec.js';
import { EngineClient, EngineError, isEngineUnavailable } from './engineClient.js';
import { followWorkloadLogs } from './logFollower.js';
import { discardContainer, errorMessage, SupervisedContainer, type SupervisorContext } from './supervisedContainer.js';

/**
 * Runs workloads as containers of a Docker-API engine (Docker, or Podman's compat API) on a
 * unix socket.
 *
 * The edge, not the engine, enforces the restart policy (engine policy "no"): running
 * containers are inspected every `pollIntervalMs` and exited ones restarted with the same
 * back-off and CrashLoop rules as the process runtime, so both report the same states.
 * Containers carry labels naming node, workload, generation and template hash
 * (`containerSpec.ts`): the engine is the runtime's record, so a restarted edgecore adopts
 * running containers instead of duplicating them, and `shutdown({ stopWorkloads: false })`
 * leaves them running.
 *
 * `ensure` returns once the workload is registered (Pending) and any container of an older
 * generation is gone; pulling and starting continue in the background, because a pull can take
 * minutes and edgecore ensures workloads one after another. An unreachable engine is never
 * thrown at edgecore: it shows in the workload's status (`lastError`) and is retried.
 */

export interface ContainerRuntimeOptions {
  socketPath: string;
  nodeName: string;
  /** Data volumes live in `<dataVolumeDir>/<app>/<volume>` and survive container re-creation. */
  dataVolumeDir: string;
  logger?: RuntimeLogger;
  backoff?: BackoffSettings;
  /** How often running containers are inspected. Default 1 s. */
  pollIntervalMs?: number;
  /** Time between SIGTERM and SIGKILL when stopping a container. Default 10 s. */
  stopGraceSeconds?: number;
  /** Per engine call. Default 30 s. */
  requestTimeoutMs?: number;
  /** For image pulls and loads. Default 15 min. */
  pullTimeoutMs?: number;
}

const silentLogger: RuntimeLogger = { info: () => {}, warn: () => {} };

export class ContainerRuntime implements Runtime {
  readonly engine: EngineClient;
  readonly nodeName: string;
  private readonly logger: RuntimeLogger;
  private readonly pollIntervalMs: number;
  private readonly context: SupervisorContext;
  private readonly workloads = new Map<string, SupervisedContainer>();
  private readonly listeners: StatusListener[] = [];
  /** ensure/remove/shutdown of one workload never interleave. */
  private readonly queue = new KeyedQueue();
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private closed = false;

  constructor(opts: ContainerRuntimeOptions) {
    this.engine = new EngineClient({ socketPath: opts.socketPath, timeoutMs: opts.requestTimeoutMs, pullTimeoutMs: opts.pullTimeoutMs });
    this.nodeName = opts.nodeName;
    this.logger = opts.logger ?? silentLogger;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1_000;
    this.context = {
      engine: this.engine,
      nodeName: opts.nodeName,
      dataVolumeDir: opts.dataVolumeDir,
      logger: this.logger,
      backoff: opts.backoff ?? { ...DEFAULT_BACKOFF },
      stopGraceSeconds: opts.stopGraceSeconds ?? 10,
      isClosed: () => this.closed,
      publish: (name, status) => this.tell(name, status),
    };
  }

  /**
   * Call once at start: takes over this node's running containers (rebuilding their state from
   * labels), so an edgecore restart neither duplicates nor restarts them; duplicates of one
   * workload are removed (see `chooseAdoptions`). An unreachable engine is logged, not thrown:
   * `ensure` does the same adoption per workload once the engine answers.
   */
  async adopt(): Promise<void> {
    try {
      const running = await this.engine.listContainers({ labels: ownedFilters(this.nodeName), all: false });
      const { keep, duplicates } = chooseAdoptions(running);
      for (const id of duplicates) await discardContainer(this.engine, id, this.context.stopGraceSeconds);
      for (const [workload, id] of keep) await this.serialize(workload, () => this.adoptOne(workload, id));
    } catch (err) {
      if (!isEngineUnavailable(err)) throw err;
      this.logger.warn({ err: err.message }, 'container engine unreachable; adopting containers later, per workload');
    }
    this.startPolling();
  }

  private async adoptOne(workload: string, id: string): Promise<void> {
    if (this.closed || this.workloads.has(workload)) return;
    const found = await this.engine.inspectContainer(id);
    const info = found ? readOwnedLabels(found.Config.Labels) : null;
    if (!found || !info?.template || !found.State.Running) return;
    const entry = new SupervisedContainer(this.context, { name: workload, generation: info.generation, template: info.template }, info.template, info.templateHash);
    this.workloads.set(workload, entry);
    entry.adopt(found);
    this.logger.info({ workload, container: found.Name, pid: found.State.Pid }, 'adopted running container');
  }

  ensure(desired: DesiredWorkload): Promise<void> {
    return this.serialize(desired.name, async () => {
      if (this.closed) throw new Error('container runtime is shut down');
      const template = desired.template;
      if (template.runtime !== 'container') throw new Error(`container runtime cannot run a "${template.runtime}" workload`);
      const existing = this.workloads.get(desired.name);
      if (existing && existing.desired.generation === desired.generation && existing.hash === templateHash(template)) {
        existing.refreshTemplate(desired, template);
        return;
      }
      if (existing) await existing.retire('remove');
      const entry = new SupervisedContainer(this.context, desired, template);
      this.workloads.set(desired.name, entry);
      entry.publishStatus({});
      entry.launch('first');
      this.startPolling();
    });
  }

  /** Stops and removes the workload's containers (its data volumes are kept). Idempotent. */
  remove(name: string): Promise<void> {
    return this.serialize(name, async () => {
      const entry = this.workloads.get(name);
      if (entry) {
        await entry.retire('remove');
        this.workloads.delete(name);
        entry.publishStopped();
      }
      // Containers of this workload that no entry tracks (left by an earlier edgecore).
      try {
        for (const c of await this.engine.listContainers({ labels: ownedFilters(this.nodeName, name) })) {
          await discardContainer(this.engine, c.Id, this.context.stopGraceSeconds);
        }
      } catch (err) {
        this.logger.warn({ workload: name, err: errorMessage(err) }, 'cannot remove the containers of a removed workload yet');
      }
    });
  }

  /** Removes every workload of this node (tracked, or only found on the engine) not in `desiredNames`. */
  async removeUndesired(desiredNames: Set<string>): Promise<string[]> {
    const names = new Set([...this.workloads.keys()].filter((name) => !desiredNames.has(name)));
    for (const summary of await this.engine.listContainers({ labels: ownedFilters(this.nodeName) })) {
      const info = readOwnedLabels(summary.Labels);
      if (info && !desiredNames.has(info.workload)) names.add(info.workload);
    }
    for (const name of names) await this.remove(name);
    return [...names].sort();
  }

  statuses(): Map<string, WorkloadStatus> {
    return new Map([...this.workloads].map(([name, entry]) => [name, { ...entry.status }]));
  }

  onStatus(listener: StatusListener): void {
    this.listeners.push(listener);
  }

  /** The last `tail` lines of the workload's container log (stdout and stderr, every run). */
  async readLogs(name: string, tail: number): Promise<string[]> {
    const id = this.workloads.get(name)?.containerId
      ?? (await this.engine.listContainers({ labels: ownedFilters(this.nodeName, name) }))[0]?.Id;
    if (id === undefined || id === null) return [];
    try {
      return await this.engine.containerLogs(id, { tail });
    } catch (err) {
      if (err instanceof EngineError && err.statusCode === 404) return [];
      throw err;
    }
  }

  /** Follows the workload's log across restarts and re-creations (see `followWorkloadLogs`). */
  followLogs(name: string, onLines: (lines: string[]) => void): () => void {
    return followWorkloadLogs({
      engine: this.engine, onLines, pollIntervalMs: this.pollIntervalMs, logger: this.logger, workload: name,
      currentRun: () => {
        const entry = this.workloads.get(name);
        if (!entry || entry.runKey === '' || entry.containerId === null) return null;
        return { containerId: entry.containerId, runKey: entry.runKey, startedMs: entry.startedMs };
      },
    });
  }

  /** Runs `command` inside the workload's running container (for `edgectl exec`). */
  exec(name: string, command: string[], opts: { timeoutMs: number; maxOutputBytes: number }): Promise<ExecResult> {
    const entry = this.workloads.get(name);
    if (!entry?.containerId || !entry.running) return Promise.reject(new Error(`workload "${name}" has no running container on this node`));
    return this.engine.runExec(entry.containerId, command, opts);
  }

  /** `stopWorkloads: false` leaves the containers running for the next edgecore to adopt. */
  async shutdown(opts: { stopWorkloads: boolean }): Promise<void> {
    if (this.closed) return; // a second call must not remove what the first one left running
    this.closed = true;
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    this.pollTimer = null;
    await Promise.all([...this.workloads.keys()].map((name) => this.serialize(name, async () => {
      const entry = this.workloads.get(name);
      if (!entry) return;
      await entry.retire(opts.stopWorkloads ? 'remove' : 'leave');
      if (opts.stopWorkloads) entry.publishStopped();
    })));
  }

  // ---- internals ------------------------------------------------------------------------------

  private startPolling(): void {
    if (this.pollTimer !== null || this.closed) return;
    this.pollTimer = setInterval(() => void this.pollOnce(), this.pollIntervalMs);
  }

  /** One pass over the workloads; a pass still running (a slow engine) makes the next one skip. */
  private async pollOnce(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const entry of [...this.workloads.values()]) await entry.poll();
    } finally {
      this.polling = false;
    }
  }

  private tell(name: string, status: WorkloadStatus): void {
    for (const listener of this.listeners) {
      try {
        listener(name, { ...status });
      } catch (err) {
        this.logger.warn({ workload: name, err: errorMessage(err) }, 'workload status listener failed');
      }
    }
  }

  private serialize(name: string, op: () => Promise<void>): Promise<void> {
    return this.queue.run(name, op);
  }
}
