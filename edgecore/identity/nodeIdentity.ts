import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { backoffDelayMs } from '../link/backoff.js';
import type { LinkAuth } from '../link/linkAuth.js';
import type { EdgePart } from '../part.js';
import { tryCloudUrls } from '../link/cloudUrls.js';
import { commitBearerIdentity, commitCertificateIdentity, loadIdentity, type StoredIdentity } from './identityStore.js';
import { JoinRefusedError, joinCloud, tokenSha256 } from './join.js';

export interface NodeIdentityOptions {
  dataDir: string;
  node: string;
  /** The cloudcore replicas' URLs: a join tries them in turn (one shared store answers the same at each). */
  cloudUrls: readonly string[];
  joinToken?: string | undefined;
  allowUnpinnedToken?: boolean;
  log: Logger;
}


export interface NodeIdentityEvents {
  /** A new identity was committed (join or renewal): TLS users reload (the link, the broker's CA trust). */
  changed: [StoredIdentity];
}

/**
 * Who this node is to the cloud: the identity committed in the data dir (identityStore.ts), or,
 * the first time (or when started with a join token other than the one it joined with), a join.
 * The identity lives beside the database, not in it, so wiping the database (lost disk, reset)
 * keeps the node's identity and makes the cloud resend everything.
 */
export class NodeIdentity extends EventEmitter<NodeIdentityEvents> implements EdgePart {
  readonly name = 'identity';
  /** Why the last join did not succeed; null once it did or none was needed. Shown on the status page. */
  joinError: string | null = null;
  private identity: StoredIdentity | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: NodeIdentityOptions) { super(); }

  async start(): Promise<void> {
    try {
      this.identity = loadIdentity(this.opts.dataDir);
    } catch (err) {
      // Unusable files: a join token (if given) replaces them; without one the node waits for it.
      this.joinError = (err as Error).message;
      this.opts.log.error({ err: this.joinError }, 'node identity cannot be read');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  /** The committed identity, or null before the node has one. */
  get current(): StoredIdentity | null { return this.identity; }

  /** The CA bundle of the cloud (certificate mode), e.g. for the device broker's client-certificate trust. */
  caBundle(): string | null { return this.identity?.mode === 'certificate' ? this.identity.caBundle : null; }

  /** What the link presents now; read at every connect so a renewal is used by the next one. */
  linkAuth(): LinkAuth | null {
    const id = this.identity;
    if (!id) return null;
    return id.mode === 'certificate' ? { mode: 'certificate', ca: id.caBundle, cert: id.certPem, key: id.keyPem } : { mode: 'bearer', credential: id.credential };
  }

  /** Commits a new identity (from a join or a renewal) and tells its users. */
  replace(next: StoredIdentity): void {
    if (next.mode === 'certificate') commitCertificateIdentity(this.opts.dataDir, next);
    else commitBearerIdentity(this.opts.dataDir, next);
    this.identity = next;
    this.emit('changed', next);
  }

  /**
   * A join is due: no identity yet, a join token other than the one the identity came from, or a
   * token given for an https cloud while the node holds only a bearer credential (an edge from
   * before node certificates, whose credential file does not record its token).
   */
  private joinDue(): boolean {
    const { joinToken } = this.opts;
    if (!this.identity) return true;
    if (joinToken === undefined) return false;
    if (this.identity.mode === 'bearer' && new URL(this.opts.cloudUrls[0]!).protocol === 'https:') return true;
    return this.identity.joinTokenSha256 !== null && this.identity.joinTokenSha256 !== tokenSha256(joinToken);
  }

  /**
   * Calls `use` once the node has an identity: at once from its files, or after a join. A join
   * that cannot reach the cloud is retried with back-off; the first attempt is awaited. A refused
   * join (bad or used token, pin mismatch) or a missing token is final: logged, not retried; a
   * node that had an identity goes on with it.
   */
  async withIdentity(use: () => Promise<void>, attempt = 0): Promise<void> {
    if (this.stopped) return;
    if (this.joinDue()) {
      const { log, joinToken } = this.opts;
      if (!joinToken) {
        log.error({}, 'node has no identity and no join token: create one with `edgectl token create NODE` and pass --join-token');
        return;
      }
      const rejoin = this.identity !== null;
      try {
        // A refusal is the fleet's answer (the token lives in the shared store), not one replica's:
        // it ends the walk. An unreachable or failing replica sends the join to the next.
        const joined = await tryCloudUrls(this.opts.cloudUrls, (cloudUrl) => joinCloud({
          cloudUrl, node: this.opts.node, token: joinToken,
          allowUnpinnedToken: this.opts.allowUnpinnedToken ?? false, warn: (o, m) => log.warn(o, m),
        }), (err) => err instanceof JoinRefusedError,
        (url, err) => log.warn({ cloudUrl: url, err: err.message }, 'cloud replica did not take the join; trying the next'));
        if (this.stopped) return;
        this.replace(joined);
        log.info({ mode: joined.mode, rejoin }, 'joined the fleet');
      } catch (err) {
        this.joinError = (err as Error).message;
        if (err instanceof JoinRefusedError) {
          log.error({ err: this.joinError }, rejoin ? 'join with the new token refused; going on with the identity the node has' : 'join refused; get a new token for this node');
          if (rejoin) await this.useIdentity(use);
          return;
        }
        // attempt 0 was the first try: this is failure number attempt + 1.
        const delay = backoffDelayMs(attempt + 1);
        log.warn({ err: this.joinError, retryInMs: delay }, 'cannot reach cloud to join; retrying');
        this.retryTimer = setTimeout(() => void this.withIdentity(use, attempt + 1), delay);
        return;
      }
      this.joinError = null;
    }
    await this.useIdentity(use);
  }

  private async useIdentity(use: () => Promise<void>): Promise<void> {
    if (!this.stopped && this.identity) await use();
  }
}
