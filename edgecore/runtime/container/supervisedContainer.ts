import { mkdirSync } from 'node:fs';
import type { ContainerTemplate, WorkloadStatus } from '../../../protocol/index.js';
import type { RuntimeLogger } from '../processRuntime.js';
import { initialReadiness, livenessFailureMessage } from '../probes/runProbes.js';
import {
  isFailure, nextConsecutiveFailures, restartDelayMs, shouldRestart, stateAfterRun, type BackoffSettings, type RunOutcome,
} from '../restartPolicy.js';
import type { DesiredWorkload } from '../runtime.js';
import {
  buildCreatePlan, containerLabels, containerName, describeContainerExit, engineTimeMs, ownedFilters, readOwnedLabels, templateHash,
} from './containerSpec.js';
import { containerAddress, ContainerRunProbes } from './containerProbes.js';
import { EngineError, isEngineUnavailable, type ContainerInspect, type EngineClient } from './engineClient.js';
import { prepareImage } from './imagePreparer.js';

/**
 * One workload's container and its supervision: bringing it up (adopting what the engine
 * already runs for it, else image, create, start), noticing its exit on each poll, and
 * restarting it per restart policy with the process runtime's back-off and states. Restarts
 * reuse the container (like Docker's own restart), so its log spans every run.
 *
 * Probes (`containerProbes.ts`) run per run, as for processes: a failed liveness probe stops
 * the container (SIGTERM, SIGKILL after the grace) and counts as a failed run (restart per
 * policy, with back-off); readiness sets `status.ready`.
 */

export interface SupervisorContext {
  engine: EngineClient;
  nodeName: string;
  dataVolumeDir: string;
  logger: RuntimeLogger;
  backoff: BackoffSettings;
  stopGraceSeconds: number;
  isClosed(): boolean;
  publish(name: string, status: WorkloadStatus): void;
}

class RetiredError extends Error {}

export class SupervisedContainer {
  readonly hash: string;

  /** `ensure` of the same template for an adopted container: keep the container, learn the full template (env included). */
  refreshTemplate(desired: DesiredWorkload, template: ContainerTemplate): void {
    this.desired = desired;
    this.template = template;
  }
  readonly containerName: string;
  containerId: string | null = null;
  status: WorkloadStatus;
  /** Started (or adopted) and not seen exited yet. */
  running = false;
  startedMs = Date.now();
  /** The engine's StartedAt of the live run, to notice a start we did not make. */
  engineStartedAt = '';
  private consecutiveFailures = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  /** The bring-up in flight, if any; polls leave the container alone meanwhile. */
  private attempt: Promise<void> | null = null;
  private readonly abort = new AbortController();
  /** Replaced, removed or shut down: no more restarts. */
  private retired = false;
  /** Set while the engine does not answer: the lastError to put back when it does. */
  private outage: { previousLastError: string | null } | null = null;
  /** The probers of the live run. */
  private probes: ContainerRunProbes | null = null;
  /** The live run's address on its network, refreshed by each poll. */
  private address: string | null = null;
  /** Set when the live run failed its liveness probe and must be stopped: the last check's reason. */
  private livenessFailure: string | null = null;

  /**
   * `hash` is given for an adopted container, whose template (from its labels) lacks env
   * values: the hash of the full template it was created from.
   */
  constructor(private readonly ctx: SupervisorContext, public desired: DesiredWorkload, public template: ContainerTemplate, hash?: string) {
    this.hash = hash ?? templateHash(template);
    this.containerName = containerName(ctx.nodeName, desired.name, desired.generation);
    this.status = { state: 'Pending', restarts: 0, ready: initialReadiness(template.probes), generation: desired.generation, observedAt: now() };
  }

  get name(): string { return this.desired.name; }

  /** Changes with every start of the container; empty while nothing runs. */
  get runKey(): string {
    return this.running && this.containerId !== null ? `${this.containerId}@${this.engineStartedAt}` : '';
  }

  /** Starts bringing the container up in the background; a failure counts as a failed start. */
  launch(mode: 'first' | 'restart'): void {
    this.startedMs = Date.now();
    const attempt: Promise<void> = this.bringUp(mode)
      .catch((err: unknown) => {
        if (this.retired || err instanceof RetiredError) return;
        this.endRun({ exitCode: null, signal: null, spawnFailed: true }, errorMessage(err));
      })
      .then(() => { if (this.attempt === attempt) this.attempt = null; });
    this.attempt = attempt;
  }

  /** Takes over a running container found on the engine (edgecore restarted). */
  adopt(found: ContainerInspect): void {
    this.containerId = found.Id;
    this.markRunning(found);
  }

  /** After `retire('remove')`: nothing runs any more. */
  publishStopped(): void {
    this.publishStatus({ state: 'Stopped', pid: null, finishedAt: now(), ready: initialReadiness(this.template.probes) });
  }

  publishStatus(patch: Partial<WorkloadStatus>): void {
    this.status = { ...this.status, ...patch, observedAt: now() };
    this.ctx.publish(this.name, { ...this.status });
  }

  /** One supervision step: inspects the running container and reacts to an exit or an outage. */
  async poll(): Promise<void> {
    if (this.retired || !this.running || this.attempt !== null || this.containerId === null) return;
    let found: ContainerInspect | null;
    try {
      found = await this.ctx.engine.inspectContainer(this.containerId);
    } catch (err) {
      if (isEngineUnavailable(err)) this.noteOutage(err.message);
      else this.ctx.logger.warn({ workload: this.name, err: errorMessage(err) }, 'cannot inspect container');
      return;
    }
    if (this.retired || !this.running || this.attempt !== null) return;
    this.noteRecovered();
    if (found === null) {
      this.containerId = null;
      this.endRun({ exitCode: null, signal: null, spawnFailed: false }, `container ${this.containerName} disappeared from the engine`);
    } else if (!found.State.Running) {
      this.observeExit(found);
    } else if (found.State.StartedAt !== this.engineStartedAt) {
      this.markRunning(found); // restarted behind our back: report the new run
    } else {
      this.address = containerAddress(found);
      // The stop after a failed liveness probe did not get through (engine outage): again.
      if (this.livenessFailure !== null) this.stopForLiveness();
    }
  }

  /**
   * Ends supervision: no more restarts; the bring-up in flight is aborted and awaited. `remove`
   * then stops (SIGTERM, SIGKILL after the grace) and deletes the container; `leave` keeps it
   * running. An engine that does not answer leaves the container in place: `ensure`, `remove`
   * and `removeUndesired` find it by its labels later.
   */
  async retire(mode: 'remove' | 'leave'): Promise<void> {
    this.retired = true;
    this.stopProbes();
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.abort.abort();
    if (this.attempt !== null) await this.attempt;
    this.running = false;
    if (mode === 'leave' || this.containerId === null) return;
    try {
      await discardContainer(this.ctx.engine, this.containerId, this.ctx.stopGraceSeconds);
    } catch (err) {
      this.ctx.logger.warn({ workload: this.name, container: this.containerName, err: errorMessage(err) }, 'cannot remove container');
    }
  }

  // ---- bringing up ----------------------------------------------------------------------------

  private async bringUp(mode: 'first' | 'restart'): Promise<void> {
    const { engine, logger } = this.ctx;
    if (mode === 'first') {
      // What the engine already has for this workload: ours (same name and template) is kept,
      // anything else (older generation, other template) goes.
      for (const c of await engine.listContainers({ labels: ownedFilters(this.ctx.nodeName, this.name) })) {
        const info = readOwnedLabels(c.Labels);
        const ours = info?.templateHash === this.hash && info.generation === this.desired.generation && c.Names.includes(`/${this.containerName}`);
        if (ours && this.containerId === null) this.containerId = c.Id;
        else await discardContainer(engine, c.Id, this.ctx.stopGraceSeconds);
        this.checkRetired();
      }
    }
    if (this.containerId !== null) {
      const found = await engine.inspectContainer(this.containerId);
      this.checkRetired();
      if (found === null) this.containerId = null;
      else if (found.State.Running) {
        this.markRunning(found);
        if (mode === 'first') logger.info({ workload: this.name, container: this.containerName }, 'adopted running container');
        return;
      } else if (mode === 'first' && !shouldRestart(this.template.restartPolicy, found.State.ExitCode, null)) {
        // It ended for good before this edgecore looked (a finished one-shot job): report, do not rerun.
        const { ExitCode: exitCode, OOMKilled, Error: engineError } = found.State;
        this.publishStatus({
          state: isFailure(exitCode, null) ? 'Failed' : 'Exited', pid: null, exitCode, signal: null, ready: initialReadiness(this.template.probes),
          startedAt: isoOrNull(found.State.StartedAt), finishedAt: isoOrNull(found.State.FinishedAt),
          lastError: isFailure(exitCode, null) ? describeContainerExit(exitCode, OOMKilled, engineError) : null,
        });
        return;
      }
    }
    if (this.containerId === null) {
      await prepareImage(engine, this.template, { signal: this.abort.signal, logger, workload: this.name });
      this.checkRetired();
      const plan = buildCreatePlan({
        template: this.template, app: this.name, dataVolumeDir: this.ctx.dataVolumeDir,
        labels: containerLabels(this.ctx.nodeName, this.name, this.desired.generation, this.template),
      });
      for (const dir of plan.directories) mkdirSync(dir, { recursive: true });
      this.containerId = await engine.createContainer(this.containerName, plan.body);
      this.checkRetired();
    }
    await engine.startContainer(this.containerId);
    const started = await engine.inspectContainer(this.containerId);
    this.checkRetired();
    if (started === null) throw new Error(`container ${this.containerName} vanished right after it was started`);
    this.markRunning(started);
    logger.info({ workload: this.name, container: this.containerName, pid: started.State.Pid, restarts: this.status.restarts }, 'container started');
    // A command that ends at once may already be done: report the exit now, not at the next poll.
    if (!started.State.Running) this.observeExit(started);
  }

  private checkRetired(): void {
    if (this.retired) throw new RetiredError();
  }

  // ---- runs -----------------------------------------------------------------------------------

  private markRunning(found: ContainerInspect): void {
    this.stopProbes();
    this.running = true;
    this.engineStartedAt = found.State.StartedAt;
    this.startedMs = engineTimeMs(found.State.StartedAt) ?? Date.now();
    this.address = containerAddress(found);
    this.livenessFailure = null;
    this.publishStatus({
      state: 'Running', pid: found.State.Pid > 0 ? found.State.Pid : null, startedAt: new Date(this.startedMs).toISOString(),
      finishedAt: null, exitCode: null, signal: null, ready: initialReadiness(this.template.probes),
    });
    if (found.State.Running) this.startProbes(found.Id);
  }

  private startProbes(containerId: string): void {
    const runKey = this.runKey;
    const probes = new ContainerRunProbes({
      engine: this.ctx.engine, containerId, template: this.template, address: () => this.address,
      handlers: {
        onReadyChange: (ready) => { if (this.probes === probes && this.running) this.publishStatus({ ready }); },
        onLivenessFailure: (reason) => { if (this.probes === probes) this.failLiveness(runKey, reason); },
        onEngineUnreachable: (reason) => { if (this.probes === probes) this.noteOutage(reason); },
        onHandlerError: (err) => this.ctx.logger.warn({ workload: this.name, err: errorMessage(err) }, 'probe handler failed'),
      },
    });
    this.probes = probes.start();
  }

  private stopProbes(): void {
    this.probes?.stop();
    this.probes = null;
  }

  /** A failed liveness probe: stop the container; its exit then counts as a failed run. */
  private failLiveness(runKey: string, reason: string): void {
    if (this.retired || !this.running || this.runKey !== runKey) return;
    this.livenessFailure = reason;
    this.ctx.logger.warn({ workload: this.name, container: this.containerName, reason }, 'liveness probe failed; stopping container');
    this.stopForLiveness();
  }

  /**
   * Stops the container of a run that failed liveness and reports its exit at once. Runs as the
   * attempt in flight, so polls leave the container alone meanwhile; a stop that fails is tried
   * again by the next poll that finds the container still running.
   */
  private stopForLiveness(): void {
    const id = this.containerId;
    if (id === null || this.attempt !== null || this.retired) return;
    const { engine, logger, stopGraceSeconds } = this.ctx;
    const attempt: Promise<void> = (async () => {
      await engine.stopContainer(id, stopGraceSeconds);
      const found = await engine.inspectContainer(id);
      if (this.retired || !this.running || this.containerId !== id || this.livenessFailure === null) return;
      if (found === null) {
        this.containerId = null;
        this.endRun({ exitCode: null, signal: null, spawnFailed: false }, null);
      } else if (!found.State.Running) {
        this.observeExit(found);
      }
    })()
      .catch((err: unknown) => {
        logger.warn({ workload: this.name, container: this.containerName, err: errorMessage(err) }, 'cannot stop container after failed liveness probe; trying again');
      })
      .then(() => { if (this.attempt === attempt) this.attempt = null; });
    this.attempt = attempt;
  }

  private observeExit(found: ContainerInspect): void {
    const { ExitCode: exitCode, OOMKilled, Error: engineError } = found.State;
    const error = exitCode !== 0 || OOMKilled ? describeContainerExit(exitCode, OOMKilled, engineError) : null;
    this.endRun({ exitCode, signal: null, spawnFailed: false }, error);
  }

  /** A run is over (the container exited, vanished, or never started): decides about the restart. */
  private endRun(outcome: RunOutcome, error: string | null): void {
    this.running = false;
    this.outage = null;
    this.stopProbes();
    // Stopped for a failed liveness probe: a failure whatever the exit code (it may exit 0 on SIGTERM).
    const probeFailure = this.livenessFailure;
    this.livenessFailure = null;
    if (this.retired) return;
    const { backoff, logger } = this.ctx;
    this.consecutiveFailures = outcome.spawnFailed
      ? this.consecutiveFailures + 1
      : nextConsecutiveFailures(this.consecutiveFailures, Date.now() - this.startedMs, backoff.resetAfterMs);
    const { restartPolicy, probes } = this.template;
    const restart = !this.ctx.isClosed()
      && (probeFailure !== null ? restartPolicy !== 'Never' : shouldRestart(restartPolicy, outcome.exitCode, outcome.signal));
    const failed = probeFailure !== null || isFailure(outcome.exitCode, outcome.signal);
    const lastError = probeFailure !== null
      ? livenessFailureMessage(probeFailure)
      : error ?? (failed ? `exited with code ${outcome.exitCode}` : this.status.lastError ?? null);
    this.publishStatus({
      state: !restart && probeFailure !== null ? 'Failed' : stateAfterRun(outcome, restart, this.consecutiveFailures),
      pid: null, exitCode: outcome.exitCode, signal: null, finishedAt: now(), lastError, ready: initialReadiness(probes),
    });
    if (!restart) {
      logger.info({ workload: this.name, ...outcome, lastError }, 'container workload ended');
      return;
    }
    const delayMs = restartDelayMs(this.consecutiveFailures, backoff);
    logger[failed ? 'warn' : 'info']({ workload: this.name, ...outcome, lastError, delayMs }, 'container workload ended; restarting after back-off');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.retired || this.ctx.isClosed()) return;
      this.status = { ...this.status, restarts: this.status.restarts + 1 };
      this.launch('restart');
    }, delayMs);
  }

  private noteOutage(message: string): void {
    if (this.outage !== null) return;
    this.outage = { previousLastError: this.status.lastError ?? null };
    this.ctx.logger.warn({ workload: this.name, err: message }, 'container engine unreachable');
    this.publishStatus({ lastError: `container engine unreachable, container state unknown: ${message}` });
  }

  private noteRecovered(): void {
    if (this.outage === null) return;
    const { previousLastError } = this.outage;
    this.outage = null;
    this.ctx.logger.info({ workload: this.name }, 'container engine answers again');
    this.publishStatus({ lastError: previousLastError });
  }
}

/** Stops (gracefully) and deletes a container; one that is already gone is fine. */
export async function discardContainer(engine: EngineClient, id: string, graceSeconds: number): Promise<void> {
  try {
    await engine.stopContainer(id, graceSeconds);
  } catch (err) {
    if (err instanceof EngineError && err.statusCode === 404) return;
    if (isEngineUnavailable(err)) throw err;
    // Some other refusal (a container stuck in "removing", say): force the removal below.
  }
  await engine.removeContainer(id, { force: true });
}

function isoOrNull(engineTime: string): string | null {
  const ms = engineTimeMs(engineTime);
  return ms === null ? null : new Date(ms).toISOString();
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function now(): string {
  return new Date().toISOString();
}
