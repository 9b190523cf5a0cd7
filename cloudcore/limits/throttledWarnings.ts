/**
 * One warning per key (a source address, a node) per interval, however often the thing it warns
 * about happens: an attacker who trips a limit thousands of times a second must not also flood
 * the log. The occurrences in between are counted and reported with the next warning.
 */
export class ThrottledWarnings {
  private readonly lastWarned = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs: number, private readonly now: () => number = Date.now) {}

  /**
   * Records one occurrence for `key`. Returns undefined when a warning for it was given less than
   * an interval ago; otherwise the number of occurrences since that warning (this one included)
   * and the caller warns now.
   */
  occur(key: string): number | undefined {
    const now = this.now();
    const last = this.lastWarned.get(key);
    if (last && now - last.at < this.intervalMs) {
      last.suppressed++;
      return undefined;
    }
    const count = (last?.suppressed ?? 0) + 1;
    this.lastWarned.set(key, { at: now, suppressed: 0 });
    this.forgetStale(now);
    return count;
  }

  /** Keys quiet for two intervals are dropped, so the map cannot grow with every address ever seen. */
  private forgetStale(now: number): void {
    if (this.lastWarned.size < 1024) return;
    for (const [key, entry] of this.lastWarned) {
      if (now - entry.at >= 2 * this.intervalMs && entry.suppressed === 0) this.lastWarned.delete(key);
    }
  }
}
