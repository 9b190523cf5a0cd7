import { FailureThrottle } from '../../local/failureThrottle.js';

/**
 * What stands in front of the broker's password check (scrypt, ~50 ms of one of libuv's four
 * thread-pool threads): per address, at most `maxPendingPerAddress` checks run at a time (more
 * wait their turn, at most `maxWaitingPerAddress` of them) behind the status page's sliding
 * failure throttle. A CONNECT over a limit, or from an address over the throttle, is refused at
 * once (CONNACK 3, server unavailable) without its password being looked at. Pure bookkeeping;
 * mqttBroker.ts applies it.
 *
 * Why: 300 bogus CONNECTs from one address all queued for scrypt and delayed a real device's
 * first login by 6.3 s. Now one address holds at most a few pool threads, so a login from
 * another address waits for at most those; after `maxFailures` wrong passwords within the
 * window it holds none. Why wait rather than refuse at the per-address cap: devices beside the
 * node all come from 127.0.0.1, and after an edge restart they reconnect at once.
 */
export interface LoginGateOptions {
  maxPendingPerAddress: number;
  maxWaitingPerAddress: number;
  maxFailures: number;
  windowMs: number;
  now?: () => number;
}

export const DEFAULT_LOGIN_GATE: LoginGateOptions = { maxPendingPerAddress: 4, maxWaitingPerAddress: 1024, maxFailures: 10, windowMs: 60_000 };

export type Admission = { ok: true } | { ok: false; reason: string };

interface AddressState { running: number; waiting: (() => void)[] }

export class LoginGate {
  private readonly throttle: FailureThrottle;
  private readonly byAddress = new Map<string, AddressState>();

  constructor(private readonly opts: LoginGateOptions) {
    this.throttle = new FailureThrottle({ maxFailures: opts.maxFailures, windowMs: opts.windowMs, ...(opts.now ? { now: opts.now } : {}) });
  }

  /**
   * Resolves when a check for `address` may run, or with why not; every ok must be followed by
   * one finish(). The throttle is asked again when a waiting login's turn comes.
   */
  async admit(address: string): Promise<Admission> {
    const refused = this.throttled(address);
    if (refused !== null) return refused;
    let state = this.byAddress.get(address);
    if (state === undefined) this.byAddress.set(address, state = { running: 0, waiting: [] });
    if (state.running >= this.opts.maxPendingPerAddress) {
      if (state.waiting.length >= this.opts.maxWaitingPerAddress) {
        return { ok: false, reason: `${state.running + state.waiting.length} logins from ${address} are already being checked or waiting` };
      }
      await new Promise<void>((resolve) => state.waiting.push(resolve));
      // finish() handed its slot over (running unchanged).
      const late = this.throttled(address);
      if (late !== null) {
        this.release(address, state);
        return late;
      }
      return { ok: true };
    }
    state.running++;
    return { ok: true };
  }

  /** The check admitted for `address` ended: `ok` false counts as a failure of that address. */
  finish(address: string, ok: boolean): void {
    if (ok) this.throttle.succeeded(address);
    else this.throttle.failed(address);
    const state = this.byAddress.get(address);
    if (state !== undefined) this.release(address, state);
  }

  /** Checks running or waiting now (for tests). */
  get pendingNow(): number {
    let n = 0;
    for (const state of this.byAddress.values()) n += state.running + state.waiting.length;
    return n;
  }

  /** A running check's slot goes to the next waiting login of the address, else is freed. */
  private release(address: string, state: AddressState): void {
    const next = state.waiting.shift();
    if (next !== undefined) return next();
    state.running--;
    if (state.running <= 0) this.byAddress.delete(address);
  }

  private throttled(address: string): Admission | null {
    const blockedMs = this.throttle.blockedForMs(address);
    return blockedMs > 0 ? { ok: false, reason: `too many failed logins from ${address}; retry in ${Math.ceil(blockedMs / 1000)} s` } : null;
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

/**
 * Connections per address that have not logged in yet (from accept to CONNACK): each may hold
 * up to a CONNECT's worth of bytes in aedes' parser for up to the CONNECT deadline, so their
 * number per address bounds what one host can make edgecore hold before any password.
 */
export class PreLoginConnections {
  private readonly open = new Map<string, number>();

  constructor(private readonly maxPerAddress: number) {}

  /** Counts a new connection; false (not counted) when the address is at its limit. */
  opened(address: string): boolean {
    const n = this.open.get(address) ?? 0;
    if (n >= this.maxPerAddress) return false;
    this.open.set(address, n + 1);
    return true;
  }

  /** The connection logged in or went away; call once per opened() that returned true. */
  done(address: string): void {
    const n = (this.open.get(address) ?? 1) - 1;
    if (n > 0) this.open.set(address, n);
    else this.open.delete(address);
  }
}
