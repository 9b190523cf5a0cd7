import type { Probe } from '../../../protocol/index.js';
import { runProbeCheck, type ProbeCheckResult, type ProbeTarget } from './probeChecks.js';
import {
  countProbeResult, newProbeCounter, nextCheckDelayMs, probeTiming,
  type ProbeCounter, type ProbeHealth, type ProbeTiming,
} from './probeState.js';

/**
 * Runs one probe of one workload run, periodically, until stopped: the thin timer shell around
 * `probeState.ts` and `probeChecks.ts`. It reports verdict changes, not every check.
 * Timers are unref'd: a prober never keeps edgecore (or a test) alive. `stop()` cancels the
 * pending timer and any in-flight HTTP/TCP check; an in-flight exec command ends at its own
 * timeout, and its result is then ignored.
 */

export interface ProbeTransitionEvent {
  health: ProbeHealth;
  /** The reason of the check that flipped the verdict, e.g. "TCP connect to …: ECONNREFUSED". */
  reason: string;
}

export interface ProberOptions {
  probe: Probe;
  target: ProbeTarget;
  /** Verdict before the first check: liveness starts healthy, readiness unhealthy. */
  initialHealth: ProbeHealth;
  onTransition: (event: ProbeTransitionEvent) => void;
  /** Every check result, for logs or tests. */
  onResult?: (result: ProbeCheckResult) => void;
  /** Called if a callback throws; the prober keeps running. */
  onCallbackError?: (err: unknown) => void;
}

export class Prober {
  private readonly options: ProberOptions;
  private readonly timing: ProbeTiming;
  private counter: ProbeCounter;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: AbortController | null = null;
  private started = false;
  private stopped = false;

  constructor(options: ProberOptions) {
    this.options = options;
    this.timing = probeTiming(options.probe);
    this.counter = newProbeCounter(options.initialHealth);
  }

  get health(): ProbeHealth {
    return this.counter.health;
  }

  /** Still checking (started and not stopped). */
  get active(): boolean {
    return this.started && !this.stopped;
  }

  /** Schedules the first check after the probe's initial delay. Idempotent. */
  start(): this {
    if (this.started || this.stopped) return this;
    this.started = true;
    this.schedule(this.timing.initialDelayMs);
    return this;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.inFlight?.abort();
    this.inFlight = null;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.check();
    }, delayMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    if (this.stopped) return;
    const startedMs = Date.now();
    const abort = new AbortController();
    this.inFlight = abort;
    const result = await runProbeCheck(this.options.probe, this.options.target, this.timing.timeoutMs, abort.signal);
    if (this.stopped || abort.signal.aborted) return;
    this.inFlight = null;
    const { counter, transition } = countProbeResult(this.counter, result.success, this.options.probe);
    this.counter = counter;
    this.notify(() => this.options.onResult?.(result));
    if (transition !== null && !this.stopped) {
      this.notify(() => this.options.onTransition({ health: counter.health, reason: result.reason }));
    }
    // A callback may have stopped us (a failed liveness probe stops its run's probers).
    if (!this.stopped) this.schedule(nextCheckDelayMs(this.timing.periodMs, startedMs, Date.now()));
  }

  private notify(callback: () => void): void {
    try {
      callback();
    } catch (err) {
      this.options.onCallbackError?.(err);
    }
  }
}
