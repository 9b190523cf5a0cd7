import { FailureThrottle } from '../../local/failureThrottle.js';

/**
 * What stands in front of the broker's password check (scrypt, ~50 ms of one of libuv's four
 * thread-pool threads): per address, at most `maxPendingPerAddress` checks at a time and the
 * status page's sliding failure throttle; in all, at most `maxPending` checks at a time. A
 * CONNECT over a limit is refused at once (CONNACK 3, server unavailable) without its password
 * being looked at. Pure bookkeeping; mqttBroker.ts applies it.
 *
 * Why: 300 bogus CONNECTs from one address all queued for scrypt and delayed a real device's
 * first login by 6.3 s. Now one address holds at most a few pool threads, and after
 * `maxFailures` wrong passwords within the window it holds none.
 */
export interface LoginGateOptions {
  maxPending: number;
  maxPendingPerAddress: number;
  maxFailures: number;
  windowMs: number;
  now?: () => number;
}

export const DEFAULT_LOGIN_GATE: LoginGateOptions = { maxPending: 64, maxPendingPerAddress: 4, maxFailures: 10, windowMs: 60_000 };

export type Admission = { ok: true } | { ok: false; reason: string };

export class LoginGate {
  private readonly throttle: FailureThrottle;
  private readonly pendingByAddress = new Map<string, number>();
  private pending = 0;

  constructor(private readonly opts: LoginGateOptions) {
    this.throttle = new FailureThrottle({ maxFailures: opts.maxFailures, windowMs: opts.windowMs, ...(opts.now ? { now: opts.now } : {}) });
  }

  /** Takes a pending slot for `address`, or says why not; every ok must be followed by one finish(). */
  admit(address: string): Admission {
    const blockedMs = this.throttle.blockedForMs(address);
    if (blockedMs > 0) return { ok: false, reason: `too many failed logins from ${address}; retry in ${Math.ceil(blockedMs / 1000)} s` };
    const mine = this.pendingByAddress.get(address) ?? 0;
    if (mine >= this.opts.maxPendingPerAddress) return { ok: false, reason: `${mine} logins from ${address} are already being checked` };
    if (this.pending >= this.opts.maxPending) return { ok: false, reason: `${this.pending} logins are already being checked` };
    this.pending++;
    this.pendingByAddress.set(address, mine + 1);
    return { ok: true };
  }

  /** The check admitted for `address` ended: `ok` false counts as a failure of that address. */
  finish(address: string, ok: boolean): void {
    this.pending--;
    const mine = (this.pendingByAddress.get(address) ?? 1) - 1;
    if (mine > 0) this.pendingByAddress.set(address, mine);
    else this.pendingByAddress.delete(address);
    if (ok) this.throttle.succeeded(address);
    else this.throttle.failed(address);
  }

  get pendingNow(): number {
    return this.pending;
  }
}

/**
 * One warning per key per interval instead of one per event: the first event of an interval is
 * logged, the rest are counted and their number goes with the next logged one. Bounded: the
 * least recently logged keys are forgotten first.
 */
export class WarnLimiter {
  private readonly lastLogged = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs: number, private readonly maxTracked = 4096, private readonly now: () => number = Date.now) {}

  /** Null: stay quiet; a number: log now, mentioning that many events left unlogged since the last one. */
  shouldLog(key: string): number | null {
    const now = this.now();
    const entry = this.lastLogged.get(key);
    if (entry !== undefined && now - entry.at < this.intervalMs && now >= entry.at) {
      entry.suppressed++;
      return null;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.lastLogged.delete(key);
    this.lastLogged.set(key, { at: now, suppressed: 0 });
    if (this.lastLogged.size > this.maxTracked) this.lastLogged.delete(this.lastLogged.keys().next().value!);
    return suppressed;
  }
}
