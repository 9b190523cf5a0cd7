/**
 * Keys whose work failed, run again together after a delay: one timer however many keys wait,
 * and a key added while it waits runs once. The caller adds a key back when its retry fails.
 */
export class RetryLater {
  private readonly waiting = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly delayMs: number, private readonly run: (key: string) => void) {}

  add(key: string): void {
    if (this.stopped) return;
    this.waiting.add(key);
    this.timer ??= setTimeout(() => this.fire(), this.delayMs);
  }

  /** Drops what waits; later add() calls are ignored. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.waiting.clear();
  }

  private fire(): void {
    this.timer = null;
    const keys = [...this.waiting];
    this.waiting.clear();
    for (const key of keys) this.run(key);
  }
}
