import type { WorkloadTemplate } from '../../../protocol/index.js';
import type { ProbeTarget } from './probeChecks.js';
import { Prober } from './prober.js';

/**
 * The probes of one run of a workload, as a runtime uses them: started when the run starts,
 * stopped when it ends. Liveness reports its first failure verdict once (the runtime then kills
 * the run, and the next run gets fresh probers); readiness reports every change of `ready`.
 */

export type WorkloadProbes = WorkloadTemplate['probes'];

export interface RunProbeHandlers {
  /** Readiness verdict changed. Not called for the initial `false`. */
  onReadyChange: (ready: boolean) => void;
  /** Liveness failed `failureThreshold` times in a row; `reason` is the last check's. */
  onLivenessFailure: (reason: string) => void;
  /** A handler threw (the probers keep running). */
  onHandlerError?: (err: unknown) => void;
}

export interface RunProbes {
  /** Stops both probers; no handler is called afterwards. Idempotent. */
  stop(): void;
}

/** `status.ready` while a run has not passed readiness yet: null when there is no readiness probe. */
export function initialReadiness(probes: WorkloadProbes): boolean | null {
  return probes.readiness === undefined ? null : false;
}

export function livenessFailureMessage(reason: string): string {
  return `liveness probe failed: ${reason}`;
}

export function startRunProbes(probes: WorkloadProbes, target: ProbeTarget, handlers: RunProbeHandlers): RunProbes {
  const probers: Prober[] = [];
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    for (const prober of probers) prober.stop();
  };
  if (probes.liveness) {
    probers.push(new Prober({
      probe: probes.liveness, target, initialHealth: 'healthy', onCallbackError: handlers.onHandlerError,
      onTransition: ({ health, reason }) => {
        if (health !== 'unhealthy' || stopped) return;
        // The run is about to be killed: its readiness no longer matters.
        stop();
        handlers.onLivenessFailure(reason);
      },
    }));
  }
  if (probes.readiness) {
    probers.push(new Prober({
      probe: probes.readiness, target, initialHealth: 'unhealthy', onCallbackError: handlers.onHandlerError,
      onTransition: ({ health }) => {
        if (!stopped) handlers.onReadyChange(health === 'healthy');
      },
    }));
  }
  for (const prober of probers) prober.start();
  return { stop };
}
