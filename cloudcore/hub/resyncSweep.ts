/**
 * When a live link's resync sweep runs (store etcd; NodeSession.sweep does the sending): every
 * interval ±25 %, so a fleet's sessions do not sweep in step, and again shortly after a sweep
 * that found the link busy (a frame in flight or changes queued).
 */
export const SWEEP_BUSY_RETRY_MS = 5000;

export class ResyncSweepTimer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** `sweep` resolves false when the link was busy (tried again soon), true when it swept. */
  constructor(private readonly intervalMs: number | undefined, private readonly sweep: () => Promise<boolean>, private readonly onError: (err: Error) => void) {}

  /** Schedules the next sweep a (jittered) interval from now; does nothing without an interval. */
  start(): void {
    if (this.intervalMs !== undefined) this.after(Math.round(this.intervalMs * (0.75 + Math.random() * 0.5)));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private after(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.sweep().then((swept) => (swept ? this.start() : this.after(SWEEP_BUSY_RETRY_MS)), (err: Error) => {
        this.onError(err);
        this.start();
      });
    }, delayMs);
    this.timer.unref();
  }
}
