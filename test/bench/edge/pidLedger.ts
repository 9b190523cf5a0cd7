import { isLive, readStartTicks, signalGroup } from '../../../edgecore/runtime/processGroup.js';

/**
 * Every workload pid the benchmark has seen, with its start time, so a run that fails midway
 * (edgecore killed and not restarted) still leaves no sleeping workload behind. A pid is only
 * signalled while it is alive with the recorded start time, never after pid reuse.
 */
export class PidLedger {
  private readonly seen = new Map<number, number>();

  note(pids: Iterable<number>): void {
    for (const pid of pids) {
      if (this.seen.has(pid)) continue;
      const ticks = readStartTicks(pid);
      if (ticks !== null) this.seen.set(pid, ticks);
    }
  }

  /** Pids of `pids` still alive as the same process. */
  alive(pids: Iterable<number>): number[] {
    return [...pids].filter((pid) => {
      const ticks = this.seen.get(pid);
      return ticks !== undefined && isLive(pid, ticks);
    });
  }

  /** SIGKILLs the process group of every noted workload still alive. Returns how many. */
  killLeftovers(): number {
    let killed = 0;
    for (const [pid, ticks] of this.seen) {
      if (!isLive(pid, ticks)) continue;
      // Workloads are spawned detached: each leads its own group (pgid = pid).
      if (signalGroup(pid, 'SIGKILL')) killed += 1;
    }
    return killed;
  }
}
