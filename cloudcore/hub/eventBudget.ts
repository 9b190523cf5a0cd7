import type { Logger } from 'pino';
import { ThrottledWarnings } from '../limits/throttledWarnings.js';
import { TokenBuckets } from '../limits/tokenBuckets.js';

/**
 * How many events one node may have stored per second (a token bucket per node: `perSecond`,
 * bursts up to `burst`). Events past it are dropped — acked to the edge all the same, so its
 * outbox drains and desired state keeps flowing — counted per node (a metric) and warned about
 * once per node per interval. A flooding node thus costs the store at most its budget, and its
 * events never crowd out other nodes' or desired state.
 */
export interface EventBudgetSettings {
  perSecond: number;
  burst: number;
}

export class EventBudget {
  private readonly buckets: TokenBuckets;
  private readonly warnings: ThrottledWarnings;
  /** Events dropped per node since start (metrics). */
  readonly droppedByNode: Record<string, number> = {};

  constructor(settings: EventBudgetSettings, private readonly log: Pick<Logger, 'warn'>, opts: { warnIntervalMs?: number; now?: () => number } = {}) {
    this.buckets = new TokenBuckets(settings.perSecond, settings.burst, opts.now);
    this.warnings = new ThrottledWarnings(opts.warnIntervalMs ?? 60_000, opts.now);
  }

  /** True when `node` may store one more event now; otherwise the event is counted as dropped. */
  admit(node: string): boolean {
    if (this.buckets.take(node)) return true;
    this.droppedByNode[node] = (this.droppedByNode[node] ?? 0) + 1;
    const since = this.warnings.occur(node);
    if (since !== undefined) {
      this.log.warn({ node, droppedSinceLastWarning: since, droppedTotal: this.droppedByNode[node] },
        'events dropped: node is over its event budget (eventsPerSecondPerNode / eventBurstPerNode)');
    }
    return false;
  }

  forget(node: string): void {
    this.buckets.forget(node);
  }
}
