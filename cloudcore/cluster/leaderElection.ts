import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { WriteGuard } from '../store/store.js';
import {
  cancelQuietly, clusterKey, createRevisionIs, deleteOp, errorMessage, getKey, getOp, openWatch, putOp, txn,
} from './etcdCalls.js';
import { KeptLease } from './keptLease.js';
import {
  DEFAULT_LEADER_LEASE_SECONDS, LEADER_KEY, leaderGuard, leaderKeyEndsTerm, stallCheckEveryMs, stallEndsTerm,
  type LeaderKeyState, type LeaderTerm,
} from './leaderDecisions.js';

/**
 * Leader election for the replica's singletons (scheduler, rollout controller, lifecycle, compaction).
 *
 * Our own txn, not etcd3's `Election`: its campaign lease defaults to 60 s (a dead leader would
 * block failover for a minute), it hides the create revision our writes must be fenced on, and
 * its double-leader history (#158, #176) is in exactly the reconnect paths we must control. Here:
 * - campaign = grant a leader lease (default 5 s, `--leader-lease-seconds`), then one txn
 *   `create_revision(<p>cluster/leader) == 0 → put(key, replicaId, lease)`;
 * - the winner's term is that create revision: `onElected(guard)` hands out a WriteGuard so every
 *   leader-only write carries the same compare in its own txn (the lease is not a fence: a
 *   replica that stalls past its TTL would otherwise write on after a successor started);
 * - the leader steps down (`onDeposed(reason)`, then campaigns again) on lease loss, any failed
 *   keepalive, the key deleted or re-created by another, a server-side cancel of its watch of the
 *   key (or a cut watch after which the key cannot be read), and an event-loop stall > TTL/3;
 * - losers watch the key and campaign when it is deleted, and also look every TTL on their own,
 *   since etcd 3.4.23 can drop a delete event (fixed in 3.4.36).
 */

export interface LeaderElectionOptions {
  replicaId: string;
  /** Setting `--leader-lease-seconds` (default 5). */
  ttlSeconds?: number;
  /** Leadership began: run the singletons, every write through `store.guarded(guard)`. */
  onElected(guard: WriteGuard): void;
  /** Leadership ended (not called on close): stop the singletons now. The election campaigns again by itself. */
  onDeposed(reason: string): void;
  /** Transient trouble worth a log line (a failed campaign, a watch that could not open). */
  onWarning?(message: string): void;
  /** Pause after a campaign that failed on an etcd error. */
  retryMs?: number;
}

export class LeaderElection {
  private closed = false;
  private term: { guard: WriteGuard; lease: KeptLease; resolveEnd: (reason: string) => void; announced: boolean } | undefined;
  private wakeFollower: (() => void) | undefined;
  private readonly key: Buffer;
  private readonly ttlSeconds: number;
  private readonly running: Promise<void>;

  private constructor(private readonly client: Etcd3, prefix: string, private readonly opts: LeaderElectionOptions) {
    this.key = clusterKey(prefix, LEADER_KEY);
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_LEADER_LEASE_SECONDS;
    this.running = this.run();
  }

  /** Starts campaigning at once, and keeps doing so until close(). */
  static start(client: Etcd3, prefix: string, opts: LeaderElectionOptions): LeaderElection {
    return new LeaderElection(client, prefix, opts);
  }

  /** True from onElected to onDeposed (or close). */
  get isLeader(): boolean {
    return this.term?.announced ?? false;
  }

  /** The current term's guard, or undefined when not the leader. */
  get guard(): WriteGuard | undefined {
    return this.term?.announced ? this.term.guard : undefined;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        await this.campaign();
      } catch (err) {
        if (this.closed) return;
        this.opts.onWarning?.(`leader campaign failed: ${errorMessage(err)}`);
        await this.pause(this.opts.retryMs ?? 500);
      }
    }
  }

  private async campaign(): Promise<void> {
    const lease = await KeptLease.grant(this.client, { ttlSeconds: this.ttlSeconds, strict: true });
    let won = false;
    try {
      const res = await txn(this.client, [createRevisionIs(this.key, 0)], [putOp(this.key, this.opts.replicaId, lease.id)], [getOp(this.key)]);
      if (this.closed) return;
      if (res.succeeded) {
        won = true;
        // The txn's single put created the key: its create revision is the txn's revision.
        await this.lead(lease, { replicaId: this.opts.replicaId, createRevision: res.revision });
        return;
      }
    } finally {
      if (!won) await lease.revoke();
    }
    await this.follow();
  }

  /** Holds the term until something ends it; then steps down and revokes the lease. */
  private async lead(lease: KeptLease, term: LeaderTerm): Promise<void> {
    const guard = leaderGuard(term.replicaId, term.createRevision);
    let resolveEnd: (reason: string) => void = () => undefined;
    const ended = new Promise<string>((resolve) => { resolveEnd = resolve; });
    const current = { guard, lease, resolveEnd, announced: false };
    this.term = current;
    lease.once('lost', (reason) => resolveEnd(`the leader lease was lost: ${reason}`));
    // Lost while the campaign txn was in flight: the event has fired already.
    if (!lease.alive) resolveEnd('the leader lease was lost during the campaign');

    let lastTick = Date.now();
    const checkMs = stallCheckEveryMs(this.ttlSeconds);
    const stallTimer = setInterval(() => {
      const now = Date.now();
      const stalled = stallEndsTerm(checkMs, now - lastTick, this.ttlSeconds);
      lastTick = now;
      if (stalled) resolveEnd(stalled);
    }, checkMs);

    let watcher: Watcher | undefined;
    let ending = false;
    void ended.then(() => { ending = true; });
    const onChange = (kv: IKeyValue | undefined) => {
      const verdict = leaderKeyEndsTerm(term, kv && keyState(kv));
      if (verdict) resolveEnd(verdict);
    };
    const watchFrom = async (revision: number): Promise<void> => {
      const opened = await openWatch(this.client, this.key, revision);
      if (ending) return cancelQuietly(opened);
      watcher = opened;
      opened.on('put', (kv) => onChange(kv));
      opened.on('delete', () => onChange(undefined));
      opened.on('error', (err) => resolveEnd(`the watch on the leader key failed: ${err.message}`));
      // A cut stream (often one etcd member gone, the cluster fine) is not itself a lost term: look
      // at the key, and watch again after what we saw; any etcd error on the way ends the term.
      opened.on('disconnected', (err) => {
        cancelQuietly(opened);
        void getKey(this.client, this.key).then(({ kv, revision: at }) => {
          onChange(kv);
          if (!ending) return watchFrom(at + 1);
        }).catch((e: unknown) => resolveEnd(`the watch on the leader key was cut (${err.message}) and the key could not be read: ${errorMessage(e)}`));
      });
    };
    await watchFrom(term.createRevision + 1).catch((err: unknown) => resolveEnd(`could not watch the leader key: ${errorMessage(err)}`));

    // A term that ended while it was being set up is not announced (and so not deposed either).
    if (!this.closed && !ending) {
      current.announced = true;
      this.opts.onElected(guard);
    }
    const reason = await ended;
    clearInterval(stallTimer);
    if (watcher) cancelQuietly(watcher);
    this.term = undefined;
    if (reason === CLOSED) return;
    // Stop the singletons first; the guard fences their writes already, this stops them trying.
    if (current.announced) this.opts.onDeposed(reason);
    else this.opts.onWarning?.(`a term ended before it began: ${reason}`);
    // Revoking deletes the key if it is still ours, so the next leader need not wait out the TTL.
    await lease.revoke();
  }

  /** Waits until the leader key is gone (or may be): a delete event, a watch failure, or the periodic look. */
  private async follow(): Promise<void> {
    const { kv, revision } = await getKey(this.client, this.key);
    if (!kv || this.closed) return;
    let watcher: Watcher | undefined;
    try {
      watcher = await openWatch(this.client, this.key, revision + 1);
    } catch (err) {
      this.opts.onWarning?.(`could not watch the leader key: ${errorMessage(err)}`);
    }
    await new Promise<void>((resolve) => {
      const look = setInterval(() => {
        getKey(this.client, this.key).then((res) => { if (!res.kv) done(); }, () => undefined);
      }, this.ttlSeconds * 1000);
      const done = () => {
        clearInterval(look);
        this.wakeFollower = undefined;
        resolve();
      };
      this.wakeFollower = done;
      // close() may have come while the key was read or the watch opened, before there was anything to wake.
      if (this.closed) return done();
      watcher?.on('delete', done);
      watcher?.on('error', done);
      watcher?.on('disconnected', done);
      if (!watcher) setTimeout(done, this.opts.retryMs ?? 500);
    });
    if (watcher) cancelQuietly(watcher);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wakeFollower = undefined; resolve(); }, ms);
      this.wakeFollower = () => { clearTimeout(timer); this.wakeFollower = undefined; resolve(); };
      if (this.closed) this.wakeFollower();
    });
  }

  /** Resigns if leading (deletes the key under its create revision, then revokes the lease) and stops campaigning. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const term = this.term;
    this.wakeFollower?.();
    if (term) {
      term.resolveEnd(CLOSED);
      await txn(this.client, [createRevisionIs(this.key, term.guard.createRevision)], [deleteOp(this.key)]).catch(() => undefined);
      await term.lease.revoke();
    }
    await this.running;
  }
}

const CLOSED = '\u0000closed';

function keyState(kv: IKeyValue): LeaderKeyState {
  return { value: kv.value.toString('utf8'), createRevision: Number(kv.create_revision) };
}
