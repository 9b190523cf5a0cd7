import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { backoffDelayMs } from '../link/backoff.js';
import type { EdgePart } from '../part.js';
import { JoinRefusedError, joinCloud } from './join.js';

export interface NodeIdentityOptions {
  dataDir: string;
  node: string;
  cloudUrl: string;
  joinToken?: string;
  log: Logger;
}

/**
 * Who this node is to the cloud: the credential file beside the database, or, the first time,
 * a join with the one-time token. The credential lives in its own file (0600), so wiping the
 * database (lost disk, reset) keeps the node's identity and makes the cloud resend everything.
 */
export class NodeIdentity implements EdgePart {
  readonly name = 'identity';
  /** Why the last join did not succeed; null once the node has a credential. Shown on the status page. */
  joinError: string | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: NodeIdentityOptions) {}

  private credentialPath(): string { return join(this.opts.dataDir, 'node.credential'); }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  /**
   * Calls `use` with the node credential: at once from the file, or after a join. A join that
   * cannot reach the cloud is retried with back-off; the first attempt is awaited. A refused
   * join (bad, used or other-node token) or a missing token is final: logged, never retried.
   */
  async withCredential(use: (credential: string) => Promise<void>, attempt = 0): Promise<void> {
    if (this.stopped) return;
    const path = this.credentialPath();
    let credential = existsSync(path) ? readFileSync(path, 'utf8').trim() : '';
    if (!credential) {
      const { log, joinToken } = this.opts;
      if (!joinToken) {
        log.error({}, 'node has no credential and no join token: create one with `edgectl token create NODE` and pass --join-token');
        return;
      }
      try {
        credential = await joinCloud(this.opts.cloudUrl, this.opts.node, joinToken);
        writeFileSync(path, credential + '\n', { mode: 0o600 });
        log.info({}, 'joined the fleet');
      } catch (err) {
        this.joinError = (err as Error).message;
        if (err instanceof JoinRefusedError) {
          log.error({ err: this.joinError }, 'join refused; get a new token for this node');
          return;
        }
        // attempt 0 was the first try: this is failure number attempt + 1.
        const delay = backoffDelayMs(attempt + 1);
        log.warn({ err: this.joinError, retryInMs: delay }, 'cannot reach cloud to join; retrying');
        this.retryTimer = setTimeout(() => void this.withCredential(use, attempt + 1), delay);
        return;
      }
    }
    this.joinError = null;
    if (!this.stopped) await use(credential);
  }
}
