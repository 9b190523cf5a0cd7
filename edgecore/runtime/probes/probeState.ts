import type { Probe } from '../../../protocol/index.js';

/**
 * Pure probe bookkeeping, modelled on the kubelet's probe worker:
 * - A probe has a verdict, `healthy` or `unhealthy`, and counts consecutive equal results.
 * - A healthy probe turns unhealthy after `failureThreshold` consecutive failures; an unhealthy
 *   one turns healthy after `successThreshold` consecutive successes. Any other result only
 *   moves the counters, so one flaky check does not flip the verdict.
 * - Liveness starts healthy (a workload is not killed before it has failed), readiness starts
 *   unhealthy (a workload is not ready before it has passed).
 * - The first check runs `initialDelaySeconds` after the run started; later ones every
 *   `periodSeconds`, measured start to start (a slow check does not stretch the period, and
 *   checks never overlap).
 */

export type ProbeHealth = 'healthy' | 'unhealthy';

export type ProbeTransition = 'became-healthy' | 'became-unhealthy';

export interface ProbeThresholds {
  failureThreshold: number;
  successThreshold: number;
}

export interface ProbeCounter {
  health: ProbeHealth;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
}

export function newProbeCounter(initial: ProbeHealth): ProbeCounter {
  return { health: initial, consecutiveSuccesses: 0, consecutiveFailures: 0 };
}

/** Counts one check result; `transition` is set when the verdict changed with it. */
export function countProbeResult(
  counter: ProbeCounter,
  success: boolean,
  thresholds: ProbeThresholds,
): { counter: ProbeCounter; transition: ProbeTransition | null } {
  if (success) {
    const consecutiveSuccesses = counter.consecutiveSuccesses + 1;
    const flips = counter.health === 'unhealthy' && consecutiveSuccesses >= thresholds.successThreshold;
    return {
      counter: { health: flips ? 'healthy' : counter.health, consecutiveSuccesses, consecutiveFailures: 0 },
      transition: flips ? 'became-healthy' : null,
    };
  }
  const consecutiveFailures = counter.consecutiveFailures + 1;
  const flips = counter.health === 'healthy' && consecutiveFailures >= thresholds.failureThreshold;
  return {
    counter: { health: flips ? 'unhealthy' : counter.health, consecutiveSuccesses: 0, consecutiveFailures },
    transition: flips ? 'became-unhealthy' : null,
  };
}

export interface ProbeTiming {
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
}

export function probeTiming(probe: Pick<Probe, 'initialDelaySeconds' | 'periodSeconds' | 'timeoutSeconds'>): ProbeTiming {
  return {
    initialDelayMs: probe.initialDelaySeconds * 1_000,
    periodMs: probe.periodSeconds * 1_000,
    timeoutMs: probe.timeoutSeconds * 1_000,
  };
}

/** Wait before the next check, given when the last one started: the rest of the period, or none. */
export function nextCheckDelayMs(periodMs: number, lastCheckStartedMs: number, nowMs: number): number {
  const elapsed = Math.max(0, nowMs - lastCheckStartedMs);
  return Math.max(0, periodMs - elapsed);
}
