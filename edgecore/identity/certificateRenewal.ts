import type { Logger } from 'pino';
import { backoffDelayMs, type BackoffPolicy } from '../link/backoff.js';
import type { EdgePart } from '../part.js';
import { identityStanding, isExpired, renewalTime, summarize, type IdentityStanding } from './identityStanding.js';
import type { StoredIdentity } from './identityStore.js';
import { JoinRefusedError } from './join.js';
import type { NodeIdentity } from './nodeIdentity.js';
import { renewIdentity } from './renewIdentity.js';
import { tryCloudUrls } from '../link/cloudUrls.js';

export interface CertificateRenewalOptions {
  identity: NodeIdentity;
  /** The cloudcore replicas' URLs, the one the link is on first: a renewal tries them in turn. */
  cloudUrls: () => readonly string[];
  node: string;
  log: Logger;
  /** A new identity is committed: the link reconnects once to present it. */
  onRenewed: () => void;
  backoff?: BackoffPolicy;
  now?: () => Date;
}

/** Retries of a failed renewal: from a second up to a minute (a renewal is due long before expiry). */
export const RENEWAL_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 60_000 };
/** setTimeout's longest delay is 2^31-1 ms (~24.8 days); a longer wait is made of several. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RenewalView {
  mode: 'certificate' | 'bearer';
  serial: string | null;
  notAfter: string | null;
  renewAt: string | null;
  standing: IdentityStanding;
  lastRenewalError: string | null;
  lastRenewedAt: string | null;
}

/**
 * Renews the node's identity while edgecore runs: at 2/3 of its life (protocol/certificatePolicy),
 * and at once when it has expired and the link fails (an edge that was offline). A new key pair
 * each time; the old identity stays in use until the new one is committed. The cloud's 401/403
 * (past its grace window, or a revoked/unknown identity) means a new join token is needed:
 * logged once, shown on the status page, not retried.
 */
export class CertificateRenewal implements EdgePart {
  readonly name = 'renewal';
  lastError: string | null = null;
  lastRenewedAt: Date | null = null;
  needsNewToken = false;
  /** A refused link was already probed with a renewal for the current identity. */
  private probedRefusal = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private retryPending = false;
  private inFlight: Promise<void> | null = null;
  private stopped = false;
  private readonly now: () => Date;
  private readonly onChanged = () => { this.needsNewToken = false; this.probedRefusal = false; if (!this.inFlight) this.schedule(); };

  constructor(private readonly opts: CertificateRenewalOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  async start(): Promise<void> {
    this.opts.identity.on('changed', this.onChanged);
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.opts.identity.off('changed', this.onChanged);
    await this.inFlight;
  }

  /** The identity section of the status page. */
  view(): RenewalView | null {
    const id = this.opts.identity.current;
    if (!id) return null;
    const summary = summarize(id);
    const at = renewalTime(summary.validity);
    return {
      mode: summary.mode, serial: summary.serial,
      notAfter: summary.validity?.notAfter.toISOString() ?? null,
      renewAt: at?.toISOString() ?? null,
      standing: identityStanding(summary.validity, this.now(), this.needsNewToken),
      lastRenewalError: this.lastError,
      lastRenewedAt: this.lastRenewedAt?.toISOString() ?? null,
    };
  }

  /**
   * The link failed to connect. An expired identity is renewed now (the cloud accepts it within
   * its grace window). One the cloud refused (401) while still valid is probed once with a
   * renewal: a revoked or replaced identity is refused there too, which is "needs a new token";
   * otherwise the node simply has a newer certificate.
   */
  onLinkDown(refusedIdentity = false): void {
    const id = this.opts.identity.current;
    if (!id || this.stopped || this.needsNewToken || this.inFlight || this.retryPending) return;
    const expired = isExpired(summarize(id).validity, this.now());
    if (!expired && !(refusedIdentity && !this.probedRefusal)) return;
    if (!expired) this.probedRefusal = true;
    void this.renew();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.retryPending = false;
    const id = this.opts.identity.current;
    if (!id || this.stopped || this.needsNewToken) return;
    // A bearer credential without an expiry comes from an older cloudcore. This one gives such a
    // credential a default life, so renew it at once to learn its expiry (and to get one).
    const at = renewalTime(summarize(id).validity) ?? this.now();
    const wait = at.getTime() - this.now().getTime();
    if (wait > MAX_TIMER_MS) {
      this.timer = setTimeout(() => this.schedule(), MAX_TIMER_MS);
      return;
    }
    this.timer = setTimeout(() => void this.renew(), Math.max(0, wait));
  }

  /** One renewal attempt; on failure the next is scheduled with back-off. */
  renew(): Promise<void> {
    this.inFlight ??= this.attempt().finally(() => { this.inFlight = null; });
    return this.inFlight;
  }

  private async attempt(): Promise<void> {
    clearTimeout(this.timer);
    this.retryPending = false;
    const current = this.opts.identity.current;
    if (!current || this.stopped) return;
    const { log } = this.opts;
    let next: StoredIdentity;
    try {
      const now = this.now();
      // A 401/403/404 is the fleet's answer (one shared store), so it ends the walk; an
      // unreachable replica or a 5xx sends the renewal to the next.
      next = await tryCloudUrls(this.opts.cloudUrls(), (url) => renewIdentity(url, this.opts.node, current, now), (err) => err instanceof JoinRefusedError,
        (url, err) => log.warn({ cloudUrl: url, err: err.message }, 'cloud replica did not take the renewal; trying the next'));
    } catch (err) {
      if (this.stopped) return;
      this.lastError = (err as Error).message;
      if (err instanceof JoinRefusedError && err.status === 404) {
        // No renewal route: a cloudcore from before expiring identities, which keeps them for good.
        log.info({ err: this.lastError }, 'the cloud does not renew node identities (an older cloudcore); keeping this one as it is');
        return;
      }
      if (err instanceof JoinRefusedError && (err.status === 401 || err.status === 403)) {
        if (!this.needsNewToken) {
          log.error({ err: this.lastError, code: err.code }, 'node identity needs a new join token: the cloud no longer renews it (expired past its grace window, or revoked); create one with `edgectl token create NODE` and restart edgecore with --join-token');
        }
        this.needsNewToken = true;
        return;
      }
      this.failures++;
      const delay = backoffDelayMs(this.failures, this.opts.backoff ?? RENEWAL_BACKOFF);
      log.warn({ err: this.lastError, failures: this.failures, retryInMs: delay }, 'node identity renewal failed; retrying');
      this.retryPending = true;
      this.timer = setTimeout(() => void this.renew(), delay);
      return;
    }
    if (this.stopped) return;
    // Committed before anyone uses it: a crash after this point restarts with the new identity.
    this.opts.identity.replace(next);
    this.failures = 0;
    this.lastError = null;
    this.lastRenewedAt = this.now();
    const summary = summarize(next);
    log.info({ mode: summary.mode, serial: summary.serial, notAfter: summary.validity?.notAfter.toISOString() ?? null }, 'node identity renewed');
    this.opts.onRenewed();
    this.schedule();
  }
}
