import type { RuntimeLogger } from '../processRuntime.js';
import type { EngineClient } from './engineClient.js';

/** The run a follower should be attached to, as the runtime sees it now. */
export interface FollowedRun {
  containerId: string;
  /** Changes with every start of the container (and with every new container). */
  runKey: string;
  startedMs: number;
}

/**
 * Follows a workload's container log across restarts and re-creations until the returned
 * function is called. The engine ends a follow stream when its container stops; the follower
 * then waits for the next run and attaches from that run's start, in whole seconds (the
 * precision of Podman's log timestamps), so the first lines of a restarted run are not lost.
 * A run already going when following began is followed from its next line.
 */
export function followWorkloadLogs(opts: {
  engine: EngineClient;
  currentRun: () => FollowedRun | null;
  onLines: (lines: string[]) => void;
  pollIntervalMs: number;
  logger: RuntimeLogger;
  workload: string;
}): () => void {
  const abort = new AbortController();
  void followLoop(opts, abort.signal);
  return () => abort.abort();
}

async function followLoop(opts: Parameters<typeof followWorkloadLogs>[0], signal: AbortSignal): Promise<void> {
  const followedSinceMs = Date.now();
  let followedRun = '';
  let resumeSince: number | undefined;
  while (!signal.aborted) {
    const run = opts.currentRun();
    if (run !== null && run.runKey !== followedRun) {
      followedRun = run.runKey;
      const since = resumeSince ?? (run.startedMs >= followedSinceMs - 1_000 ? Math.floor(run.startedMs / 1000) : undefined);
      resumeSince = undefined;
      try {
        await opts.engine.followLogs(run.containerId, { onLines: opts.onLines, since, signal });
      } catch (err) {
        if (signal.aborted) return;
        opts.logger.warn({ workload: opts.workload, err: err instanceof Error ? err.message : String(err) }, 'log stream broke; following again');
        followedRun = '';
        resumeSince = Math.floor(Date.now() / 1000);
      }
    }
    await pause(opts.pollIntervalMs, signal);
  }
}

/** Waits `ms`, or less if `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
