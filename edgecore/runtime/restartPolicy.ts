import type { RestartPolicy, WorkloadState } from '../../protocol/index.js';

/**
 * Pure restart rules of the process runtime, modelled on the kubelet:
 * - `Always` restarts after any exit, `OnFailure` after a non-zero exit, a signal or a failed
 *   spawn, `Never` never.
 * - Restarts wait an exponential back-off (initial, doubling, capped) counted in consecutive
 *   quick exits; a run that lasted at least `resetAfterMs` resets the count, so a service that
 *   crashes once a day restarts after `initialMs`, not after the cap.
 * - While waiting in back-off after two or more consecutive quick exits the workload is reported
 *   `CrashLoop` (Kubernetes' CrashLoopBackOff).
 */

export interface BackoffSettings {
  initialMs: number;
  maxMs: number;
  /** A run at least this long counts as healthy and resets the consecutive-failure count. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffSettings> = Object.freeze({
  initialMs: 1_000,
  maxMs: 60_000,
  resetAfterMs: 60_000,
});

/** A run failed when it did not end with exit code 0 (signal, non-zero code, or no start at all). */
export function isFailure(exitCode: number | null, signal: string | null): boolean {
  return signal !== null || exitCode !== 0;
}

export function shouldRestart(policy: RestartPolicy, exitCode: number | null, signal: string | null): boolean {
  switch (policy) {
    case 'Always': return true;
    case 'OnFailure': return isFailure(exitCode, signal);
    case 'Never': return false;
  }
}

/**
 * Delay before the restart that follows the `consecutiveFailures`-th quick exit:
 * 1 → initialMs, 2 → 2×initialMs, 3 → 4×initialMs, … capped at maxMs. 0 or less → 0.
 */
export function restartDelayMs(
  consecutiveFailures: number,
  settings: { initialMs?: number; maxMs?: number } = {},
): number {
  const initialMs = settings.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const maxMs = settings.maxMs ?? DEFAULT_BACKOFF.maxMs;
  if (consecutiveFailures <= 0) return 0;
  // Cap the exponent so huge counts cannot overflow to Infinity before the min().
  const exponent = Math.min(consecutiveFailures - 1, 52);
  return Math.min(maxMs, initialMs * 2 ** exponent);
}

/**
 * The consecutive-failure count after a run ended. Every exit counts (under `Always` a process
 * that exits 0 at once would otherwise spin), except that a long enough run starts a new count.
 */
export function nextConsecutiveFailures(previous: number, ranMs: number, resetAfterMs: number): number {
  return ranMs >= resetAfterMs ? 1 : previous + 1;
}

export interface RunOutcome {
  exitCode: number | null;
  signal: string | null;
  /** The process never started (e.g. command not found); `lastError` says why. */
  spawnFailed: boolean;
}

/**
 * The state to report once a run ended.
 * - A failed spawn is `Failed` whether or not it will be retried: "cannot start" is what the
 *   operator needs to see, with `lastError` naming the cause.
 * - Waiting for a restart: `CrashLoop` from the second consecutive quick exit on, else `Exited`.
 * - Done for good: `Exited` after exit code 0, `Failed` otherwise (as a pod's Succeeded/Failed).
 */
export function stateAfterRun(outcome: RunOutcome, willRestart: boolean, consecutiveFailures: number): WorkloadState {
  if (outcome.spawnFailed) return 'Failed';
  if (willRestart) return consecutiveFailures >= 2 ? 'CrashLoop' : 'Exited';
  return isFailure(outcome.exitCode, outcome.signal) ? 'Failed' : 'Exited';
}
