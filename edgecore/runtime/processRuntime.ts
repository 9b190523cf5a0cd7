import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { KeyedQueue } from './keyedQueue.js';
import type { ProcessTemplate, WorkloadStatus } from '../../protocol/index.js';
import { CappedLogStore } from './cappedLog.js';
import { newRun, readLines, spawnWorkload, type Run } from './processRun.js';
import { pidNamespacesAvailable, runExec } from './processExec.js';
import { isWorkloadOwnUid, PID_NAMESPACE_ARGS, privilegeDropArgs, runAsOf } from './workloadUser.js';
import { isLive, killGroupRemnants, killUserProcesses, readStartTicks, signalGroup, terminateOrphanGroup } from './processGroup.js';
import { openFifoReader, outputFifoPath, takeHandover, writeHandover, type HandedOver } from './processHandover.js';
import { initialReadiness, livenessFailureMessage, startRunProbes, type WorkloadProbes } from './probes/runProbes.js';
import {
  DEFAULT_BACKOFF, isFailure, nextConsecutiveFailures, restartDelayMs, shouldRestart, stateAfterRun,
  type BackoffSettings, type RunOutcome,
} from './restartPolicy.js';
import type { DesiredWorkload, ExecResult, RecordKeeper, Runtime, StatusListener } from './runtime.js';
import {
  describeExit, errorMessage, now, settlesWithin, spawnErrorMessage, stableStringify, workloadEnv,
} from './processSupport.js';

export { stableStringify, workloadEnv } from './processSupport.js';

/**
 * Runs workloads as host processes. Each workload is spawned detached (its own session and
 * process group) so stopping it reaches everything it forked: SIGTERM to the group, SIGKILL after
 * the grace period. When the main process exits on its own, leftovers in its group are SIGKILLed
 * too (as a container's processes die with its init). stdout/stderr go through a FIFO into a
 * capped log file. `shutdown({ stopWorkloads: false })` (an agent upgrade) leaves them running and
 * hands them over (processHandover.ts): the next edgecore adopts each one whose generation and
 * template are still desired, same pid, and watches its pid for the exit (status then unknown).
 *
 * Environment: NOT edgecore's whole environment (it may hold credentials and settings meant for
 * edgecore only), but a small allow-list (PATH, HOME, locale, TZ, …) overlaid with the template's
 * `env`.
 *
 * Probes (`probes/`) run per run: a failed liveness probe terminates the group like a stop and
 * counts as a failed run (restart per policy, with back-off); readiness sets `status.ready`.
 */

export interface RuntimeLogger {
  info(o: object, m?: string): void;
  warn(o: object, m?: string): void;
}

export interface ProcessRuntimeOptions {
  logDir: string;
  records: RecordKeeper;
  logMaxBytes?: number;
  backoff?: BackoffSettings;
  /** Time between SIGTERM and SIGKILL when stopping. Default 5 s. */
  stopGraceMs?: number;
  logger?: RuntimeLogger;
  /**
   * Run each exec and exec probe as the init of its own PID namespace, so a timeout ends all
   * it started (default: where edgecore is root and `unshare` works).
   */
  pidNamespaces?: boolean;
}

const DEFAULT_STOP_GRACE_MS = 5_000;
/** How often an adopted workload's pid is looked at (it is not our child: no exit event). */
const ADOPTED_EXIT_POLL_MS = 500;
/** Output an exec probe keeps, per stream; only its start is quoted in `lastError`. */
const PROBE_OUTPUT_BYTES = 4_096;
const silentLogger: RuntimeLogger = { info: () => {}, warn: () => {} };


interface Supervised {
  desired: DesiredWorkload;
  template: ProcessTemplate;
  templateKey: string;
  status: WorkloadStatus;
  run: Run | null;
  consecutiveFailures: number;
  restartTimer: NodeJS.Timeout | null;
  /** Replaced, removed or shut down: no more restarts. */
  retired: boolean;
  /** Removed: late output must not recreate the deleted log. */
  removed: boolean;
}

export class ProcessRuntime implements Runtime {
  private readonly records: RecordKeeper;
  private readonly logs: CappedLogStore;
  private readonly backoff: BackoffSettings;
  private readonly stopGraceMs: number;
  private readonly logger: RuntimeLogger;
  private readonly workloads = new Map<string, Supervised>();
  private readonly listeners: StatusListener[] = [];
  /** ensure/remove/shutdown of one workload never interleave. */
  private readonly queue = new KeyedQueue();
  private closed = false;
  readonly pidNamespaces: boolean;
  private readonly logDir: string;
  /** Workloads the previous edgecore handed over, until `ensure` adopts (or ends) each. */
  private readonly adoptable = new Map<string, HandedOver>();

  constructor(opts: ProcessRuntimeOptions) {
    this.records = opts.records;
    this.logDir = opts.logDir;
    this.logs = new CappedLogStore(opts.logDir, opts.logMaxBytes);
    this.backoff = opts.backoff ?? { ...DEFAULT_BACKOFF };
    this.stopGraceMs = opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    this.logger = opts.logger ?? silentLogger;
    this.pidNamespaces = opts.pidNamespaces ?? pidNamespacesAvailable();
  }

  /** argv before an exec or exec probe of `template`: its own PID namespace, then its user. */
  private execPrefix(template: ProcessTemplate): string[] {
    const runAs = runAsOf(template);
    return [
      ...(this.pidNamespaces ? PID_NAMESPACE_ARGS : []),
      // pdeathsig: setpriv's switch clears the one unshare set, and the namespace must die with unshare.
      ...(runAs ? privilegeDropArgs(runAs, { pdeathsig: this.pidNamespaces }) : []),
    ];
  }

  /**
   * At start. Workloads the previous edgecore handed over (an upgrade) are kept for `ensure` to
   * adopt. After a crash: kills workloads a previous instance left running and forgets every
   * record; edgecore then `ensure`s the desired set afresh. A pid is only signalled when it is
   * alive with the recorded start ticks, never after pid reuse.
   */
  async recover(): Promise<void> {
    const handover = takeHandover(this.logDir);
    if (handover.problem) this.logger.warn({ problem: handover.problem }, 'ignoring the workload handover');
    for (const h of handover.workloads) if (isLive(h.pid, h.startTicks)) this.adoptable.set(h.name, h);
    const records = this.records.load();
    await Promise.all(records.map(async (record) => {
      const { pid, startTicks } = record;
      if (this.adoptable.get(record.name)?.pid === pid) return;
      if (pid !== null && startTicks !== null && pid > 1 && pid !== process.pid && !this.ownsPid(pid)) {
        const outcome = await terminateOrphanGroup(pid, startTicks, this.stopGraceMs);
        if (outcome === 'killed') this.logger.info({ workload: record.name, pid }, 'stopped workload left by a previous edgecore');
      }
      if (!this.workloads.has(record.name)) this.records.remove(record.name);
    }));
  }

  ensure(desired: DesiredWorkload): Promise<void> {
    return this.serialize(desired.name, async () => {
      if (this.closed) throw new Error('process runtime is shut down');
      if (desired.template.runtime !== 'process') throw new Error(`process runtime cannot run a "${String(desired.template.runtime)}" workload`);
      const templateKey = stableStringify(desired.template);
      const existing = this.workloads.get(desired.name);
      if (existing && existing.desired.generation === desired.generation && existing.templateKey === templateKey) return;
      if (existing) await this.stopSupervised(existing);
      const entry: Supervised = {
        desired, template: desired.template, templateKey, run: null, consecutiveFailures: 0, restartTimer: null, retired: false, removed: false,
        status: { state: 'Pending', restarts: 0, ready: initialReadiness(desired.template.probes), generation: desired.generation, observedAt: now() },
      };
      const handed = this.adoptable.get(desired.name);
      this.adoptable.delete(desired.name);
      this.workloads.set(desired.name, entry);
      if (handed && handed.generation === desired.generation && handed.templateKey === templateKey && isLive(handed.pid, handed.startTicks)) {
        this.adoptRun(entry, handed);
        return;
      }
      if (handed) await this.endHandedOver(handed, 'its workload changed meanwhile');
      this.publish(entry, {});
      this.startRun(entry);
    });
  }

  remove(name: string): Promise<void> {
    return this.serialize(name, async () => {
      const handed = this.adoptable.get(name);
      this.adoptable.delete(name);
      if (handed) await this.endHandedOver(handed, 'its workload was removed meanwhile');
      const entry = this.workloads.get(name);
      if (entry) {
        entry.removed = true;
        const outcome = await this.stopSupervised(entry);
        this.workloads.delete(name);
        this.publish(entry, stoppedPatch(outcome, entry.template.probes), false);
      }
      this.records.remove(name);
      this.logs.delete(name);
      rmSync(outputFifoPath(this.logDir, name), { force: true });
    });
  }

  statuses(): Map<string, WorkloadStatus> {
    return new Map([...this.workloads].map(([name, entry]) => [name, { ...entry.status }]));
  }

  onStatus(listener: StatusListener): void {
    this.listeners.push(listener);
  }

  readLogs(name: string, tail: number): Promise<string[]> {
    return this.logs.readTail(name, tail);
  }

  followLogs(name: string, onLines: (lines: string[]) => void): () => void {
    return this.logs.follow(name, onLines);
  }

  exec(name: string, command: string[], opts: { timeoutMs: number; maxOutputBytes: number }): Promise<ExecResult> {
    const entry = this.workloads.get(name);
    if (!entry) return Promise.reject(new Error(`no workload "${name}" on this node`));
    const { template } = entry;
    return runExec(command, { env: workloadEnv(template.env, runAsOf(template) !== null), cwd: template.workingDir, prefix: this.execPrefix(template), ...opts });
  }

  /** Stops every workload, or with `stopWorkloads: false` hands them over to the next edgecore. */
  async shutdown(opts: { stopWorkloads: boolean }): Promise<void> {
    this.closed = true;
    if (!opts.stopWorkloads) {
      await Promise.all([...this.workloads.keys()].map((name) => this.serialize(name, async () => undefined)));
      this.handOver();
      return;
    }
    await Promise.all([...this.workloads.keys()].map((name) => this.serialize(name, async () => {
      const entry = this.workloads.get(name);
      if (!entry) return;
      const outcome = await this.stopSupervised(entry);
      this.publish(entry, stoppedPatch(outcome, entry.template.probes));
    })));
  }

  // ---- supervision ----------------------------------------------------------------------------

  private startRun(entry: Supervised): void {
    const { name } = entry.desired;
    const { template } = entry;
    const run = newRun(null, null, Date.now());
    entry.run = run;
    const runAs = runAsOf(template);
    const env = workloadEnv(template.env, runAs !== null);
    const probePrefix = this.execPrefix(template);

    let child: ChildProcess;
    try {
      ({ child, reader: run.reader } = spawnWorkload(template, env, outputFifoPath(this.logDir, name)));
    } catch (err) {
      this.endRun(entry, run, { exitCode: null, signal: null, spawnFailed: true }, errorMessage(err));
      return;
    }
    child.on('error', (err) => {
      if (run.pid === null) this.endRun(entry, run, { exitCode: null, signal: null, spawnFailed: true }, spawnErrorMessage(err, template.command));
      else this.logger.warn({ workload: name, pid: run.pid, err: errorMessage(err) }, 'workload process error');
    });
    if (child.pid === undefined) return; // the spawn failed; 'error' follows on the next tick

    run.pid = child.pid;
    run.startTicks = readStartTicks(child.pid);
    if (run.reader) this.captureOutput(entry, run.reader);
    child.on('exit', (code, signal) => this.endRun(entry, run, { exitCode: code, signal, spawnFailed: false }, null));
    this.publish(entry, {
      state: 'Running', pid: child.pid, startedAt: new Date(run.startedMs).toISOString(),
      finishedAt: null, exitCode: null, signal: null, ready: initialReadiness(template.probes),
    });
    this.logger.info({ workload: name, pid: child.pid, restarts: entry.status.restarts }, 'workload started');
    this.startProbes(entry, run, env, probePrefix);
  }

  /**
   * Takes over a workload the previous edgecore handed over: same process, its output FIFO read
   * on, its pid polled for the exit (it is not our child: its exit status cannot be known).
   */
  private adoptRun(entry: Supervised, h: HandedOver): void {
    const { name } = entry.desired;
    const { template } = entry;
    const run = newRun(h.pid, h.startTicks, h.startedMs);
    entry.run = run;
    entry.status = { ...entry.status, restarts: h.restarts };
    try {
      run.reader = openFifoReader(outputFifoPath(this.logDir, name));
      this.captureOutput(entry, run.reader);
    } catch (err) {
      this.logger.warn({ workload: name, pid: h.pid, err: errorMessage(err) }, 'cannot read the adopted workload\'s output');
    }
    run.exitPoll = setInterval(() => {
      if (isLive(h.pid, h.startTicks)) return;
      this.endRun(entry, run, { exitCode: null, signal: null, spawnFailed: false }, 'ended after edgecore adopted it (its exit status is not known)');
    }, ADOPTED_EXIT_POLL_MS);
    this.publish(entry, {
      state: 'Running', pid: h.pid, startedAt: new Date(h.startedMs).toISOString(),
      finishedAt: null, exitCode: null, signal: null, ready: initialReadiness(template.probes),
    });
    this.logger.info({ workload: name, pid: h.pid, restarts: h.restarts }, 'adopted workload left running by the previous edgecore');
    this.startProbes(entry, run, workloadEnv(template.env, runAsOf(template) !== null), this.execPrefix(template));
  }

  /** A handed-over workload that is not adopted (changed or removed meanwhile) ends as an orphan would. */
  private async endHandedOver(h: HandedOver, why: string): Promise<void> {
    const outcome = await terminateOrphanGroup(h.pid, h.startTicks, this.stopGraceMs);
    if (outcome === 'killed') this.logger.info({ workload: h.name, pid: h.pid, why }, 'stopped a workload the previous edgecore handed over');
  }

  /** Leaves every running workload to the next edgecore (an upgrade's restart): nothing is signalled. */
  private handOver(): void {
    const handed: HandedOver[] = [...this.adoptable.values()];
    for (const [name, entry] of this.workloads) {
      entry.retired = true;
      if (entry.restartTimer !== null) clearTimeout(entry.restartTimer);
      entry.restartTimer = null;
      const run = entry.run;
      if (!run || run.ended || run.pid === null || run.startTicks === null) continue;
      run.probes?.stop();
      if (run.exitPoll !== null) clearInterval(run.exitPoll);
      run.reader?.destroy();
      handed.push({ name, pid: run.pid, startTicks: run.startTicks, generation: entry.desired.generation, templateKey: entry.templateKey, startedMs: run.startedMs, restarts: entry.status.restarts });
    }
    writeHandover(this.logDir, handed);
    this.logger.info({ workloads: handed.map((h) => h.name) }, 'workloads left running for the next edgecore');
  }

  private startProbes(entry: Supervised, run: Run, env: Record<string, string>, probePrefix: string[]): void {
    const { name } = entry.desired;
    const { template } = entry;
    run.probes = startRunProbes(template.probes, {
      exec: (command, timeoutMs) => runExec(command, { env, cwd: template.workingDir, timeoutMs, maxOutputBytes: PROBE_OUTPUT_BYTES, prefix: probePrefix }),
    }, {
      onReadyChange: (ready) => { if (entry.run === run && !run.ended) this.publish(entry, { ready }); },
      onLivenessFailure: (reason) => this.failLiveness(entry, run, reason),
      onHandlerError: (err) => this.logger.warn({ workload: name, err: errorMessage(err) }, 'probe handler failed'),
    });
  }

  /** A failed liveness probe: terminate the group; `endRun` then treats the exit as a failure. */
  private failLiveness(entry: Supervised, run: Run, reason: string): void {
    if (run.ended || run.stopping || entry.run !== run || run.pid === null) return;
    run.livenessFailure = reason;
    this.logger.warn({ workload: entry.desired.name, pid: run.pid, reason }, 'liveness probe failed; terminating workload');
    this.terminateRun(entry, run).catch((err: unknown) => this.logger.warn({ workload: entry.desired.name, err: errorMessage(err) }, 'cannot terminate workload'));
  }

  private captureOutput(entry: Supervised, stream: Socket): void {
    let reportedWriteError = false;
    readLines(stream, (lines) => {
      if (entry.removed || lines.length === 0) return;
      try {
        this.logs.append(entry.desired.name, lines);
      } catch (err) {
        // A full disk must not stop supervision; say so once per run.
        if (!reportedWriteError) this.logger.warn({ workload: entry.desired.name, err: errorMessage(err) }, 'cannot write workload log');
        reportedWriteError = true;
      }
    }, (err) => this.logger.warn({ workload: entry.desired.name, err: errorMessage(err) }, 'cannot read workload output'));
  }

  /** A run is over: it exited, or it never started. Decides about the restart. */
  private endRun(entry: Supervised, run: Run, outcome: RunOutcome, error: string | null): void {
    if (run.ended) return;
    run.ended = true;
    run.outcome = outcome;
    run.probes?.stop();
    if (run.exitPoll !== null) clearInterval(run.exitPoll);
    // Node has reaped the leader; whatever it forked and left in its group goes with it, and, when
    // the workload has a uid of its own, whatever of that uid left the group (setsid).
    if (run.pid !== null) killGroupRemnants(run.pid);
    const ownUid = entry.template.runAsUser;
    if (ownUid !== undefined && isWorkloadOwnUid(ownUid)) {
      const stray = killUserProcesses(ownUid);
      if (stray > 0) this.logger.info({ workload: entry.desired.name, uid: ownUid, processes: stray }, 'ended processes the workload left outside its process group');
    }
    run.markExited();
    if (run.stopping || entry.retired || entry.run !== run) return;

    const { name, template } = entry.desired;
    entry.consecutiveFailures = nextConsecutiveFailures(entry.consecutiveFailures, Date.now() - run.startedMs, this.backoff.resetAfterMs);
    // Killed for a failed liveness probe: a failure whatever the exit code (it may exit 0 on SIGTERM).
    const probeFailure = run.livenessFailure;
    const failed = probeFailure !== null || isFailure(outcome.exitCode, outcome.signal);
    const restart = probeFailure !== null ? template.restartPolicy !== 'Never' : shouldRestart(template.restartPolicy, outcome.exitCode, outcome.signal);
    const lastError = error ?? (probeFailure !== null ? livenessFailureMessage(probeFailure) : failed ? describeExit(outcome) : entry.status.lastError ?? null);
    this.publish(entry, {
      state: !restart && failed ? 'Failed' : stateAfterRun(outcome, restart, entry.consecutiveFailures),
      pid: null, exitCode: outcome.exitCode, signal: outcome.signal, finishedAt: now(), lastError, ready: initialReadiness(template.probes),
    });
    if (!restart) {
      this.logger.info({ workload: name, ...outcome, lastError }, 'workload ended');
      return;
    }
    const delayMs = restartDelayMs(entry.consecutiveFailures, this.backoff);
    this.logger[failed ? 'warn' : 'info']({ workload: name, ...outcome, lastError, delayMs }, 'workload ended; restarting after back-off');
    entry.restartTimer = setTimeout(() => {
      entry.restartTimer = null;
      if (entry.retired || this.closed) return;
      entry.status = { ...entry.status, restarts: entry.status.restarts + 1 };
      this.startRun(entry);
    }, delayMs);
  }

  /** Ends supervision of `entry`: no more restarts; its process group is terminated. */
  private async stopSupervised(entry: Supervised): Promise<RunOutcome | null> {
    entry.retired = true;
    if (entry.restartTimer !== null) clearTimeout(entry.restartTimer);
    entry.restartTimer = null;
    const run = entry.run;
    if (run === null) return null;
    run.probes?.stop();
    if (run.ended || run.pid === null) return run.ended ? run.outcome : null;
    run.stopping = true;
    await this.terminateRun(entry, run);
    return run.outcome;
  }

  /** SIGTERM to the run's group, SIGKILL after the grace period; resolves once it exited (or gave up). */
  private async terminateRun(entry: Supervised, run: Run): Promise<void> {
    const pid = run.pid;
    if (pid === null || run.ended) return;
    // The leader has not been reaped (run not ended), so pid is still our group's id.
    signalGroup(pid, 'SIGTERM');
    if (!(await settlesWithin(run.exited, this.stopGraceMs))) {
      this.logger.warn({ workload: entry.desired.name, pid, graceMs: this.stopGraceMs }, 'workload ignored SIGTERM; sending SIGKILL');
      if (!run.ended) signalGroup(pid, 'SIGKILL');
      if (!(await settlesWithin(run.exited, this.stopGraceMs))) {
        this.logger.warn({ workload: entry.desired.name, pid }, 'workload did not exit after SIGKILL');
      }
    }
  }

  /** Updates the status, saves the record (unless `persist` is false) and tells listeners. */
  private publish(entry: Supervised, patch: Partial<WorkloadStatus>, persist = true): void {
    entry.status = { ...entry.status, ...patch, observedAt: now() };
    const { name } = entry.desired;
    const status = { ...entry.status };
    const live = entry.run !== null && !entry.run.ended ? entry.run : null;
    if (persist) {
      try {
        this.records.save({ name, pid: live?.pid ?? null, startTicks: live?.startTicks ?? null, status });
      } catch (err) {
        this.logger.warn({ workload: name, err: errorMessage(err) }, 'cannot save workload record');
      }
    }
    for (const listener of this.listeners) {
      try {
        listener(name, { ...status });
      } catch (err) {
        this.logger.warn({ workload: name, err: errorMessage(err) }, 'workload status listener failed');
      }
    }
  }

  private ownsPid(pid: number): boolean {
    return [...this.workloads.values()].some((entry) => entry.run?.pid === pid && !entry.run.ended);
  }

  private serialize(name: string, op: () => Promise<void>): Promise<void> {
    return this.queue.run(name, op);
  }
}

// ---- helpers ----------------------------------------------------------------------------------

function stoppedPatch(outcome: RunOutcome | null, probes: WorkloadProbes): Partial<WorkloadStatus> {
  const patch: Partial<WorkloadStatus> = { state: 'Stopped', pid: null, ready: initialReadiness(probes) };
  if (outcome !== null && !outcome.spawnFailed) {
    patch.exitCode = outcome.exitCode;
    patch.signal = outcome.signal;
    patch.finishedAt = now();
  }
  return patch;
}
