import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { EDGEFLEET_VERSION } from '../../protocol/index.js';
import type { ControllerSet } from '../controllers/controllerSet.js';
import type { SessionAuthority } from '../hub/hub.js';
import type { ReplicaDirectory } from '../peers/clusterPeers.js';
import type { EtcdStore } from '../store/etcd/etcdStore.js';
import type { WriteGuard } from '../store/store.js';
import type { SecretSealer } from '../store/secretSealing.js';
import { ClusterSecrets } from './clusterSecrets.js';
import { LeaderElection } from './leaderElection.js';
import { ReplicaLease } from './replicaLease.js';
import { ReplicaRegistry } from './replicaRegistry.js';
import { SessionRegistry } from './sessionRegistry.js';

export interface ReplicaSettings {
  replicaId?: string | undefined;
  leaderLeaseSeconds: number;
  replicaLeaseSeconds: number;
}

/** How often the leader compacts etcd's history to the revisions the store keeps (--max-events). */
const COMPACT_EVERY_MS = 60_000;

/**
 * One cloudcore among several over one etcd store (docs/scale-out.md): its lease, its entry in
 * the replica registry, the registry of which replica holds which node's link, the secrets the
 * replicas share, and the leader election that decides which replica runs the controllers. The
 * parts live in this folder; this is the order they start in and how cloudcore uses them.
 */
export class ReplicaRuntime {
  private registry: ReplicaRegistry | undefined;
  private election: LeaderElection | undefined;
  private compactTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly id: string,
    private readonly store: EtcdStore,
    private readonly lease: ReplicaLease,
    readonly sessions: SessionRegistry,
    readonly secrets: ClusterSecrets,
    private readonly settings: ReplicaSettings,
    private readonly log: Logger,
  ) {}

  /** Takes a lease and starts following the session registry; nothing is announced yet. */
  static async join(store: EtcdStore, sealer: SecretSealer, settings: ReplicaSettings, log: Logger): Promise<ReplicaRuntime> {
    const id = settings.replicaId ?? defaultReplicaId(hostname());
    const lease = await ReplicaLease.start(store.client, { ttlSeconds: settings.replicaLeaseSeconds });
    lease.on('lost', (reason) => log.warn({ replica: id, reason }, 'replica lease lost: its link records lapse until it is granted again'));
    lease.on('granted', () => log.info({ replica: id }, 'replica lease granted'));
    lease.on('warning', (message) => log.warn({ replica: id }, message));
    const sessions = await SessionRegistry.start(store.client, store.prefix, lease, id, {
      onWarning: (message) => log.warn({ replica: id }, message),
    });
    return new ReplicaRuntime(id, store, lease, sessions, new ClusterSecrets(store.client, store.prefix, sealer), settings, log);
  }

  /** The hub's view of link ownership. */
  get authority(): SessionAuthority {
    const sessions = this.sessions;
    return {
      claim: (node) => sessions.claim(node),
      release: (node, claim) => sessions.release(node, claim),
      absentGuard: (node) => sessions.absentGuard(node),
      isHeldAnywhere: (node) => sessions.isHeldAnywhere(node),
      onTakenOver: (onMoved) => { sessions.onTakenOver(onMoved); },
    };
  }

  /** The random token replicas present to each other's `/peer/v1` routes, the same for all. */
  replicaToken(): Promise<string> {
    return this.secrets.getOrCreate('replica-token', () => randomBytes(32).toString('base64url'));
  }

  /** Where peers find which replica holds a node and where each replica answers (cloudcore/peers/). */
  get directory(): ReplicaDirectory {
    return {
      ownerOf: (node) => this.sessions.ownerOf(node),
      peerUrl: (replica) => this.registry?.get(replica)?.url,
      replicas: () => (this.registry?.list() ?? []).map((r) => ({ id: r.id, url: r.url })),
    };
  }

  /** Announces this replica at `url` (once it listens): peers route to it from now on. */
  async announce(url: string): Promise<void> {
    this.registry = await ReplicaRegistry.start(this.store.client, this.store.prefix, this.lease,
      { id: this.id, url, version: EDGEFLEET_VERSION, startedAt: new Date().toISOString() },
      { onWarning: (message) => this.log.warn({ replica: this.id }, message) });
  }

  /**
   * Campaigns for leadership: while leader, `controllers` run over a store whose every write
   * carries the leader guard, and this replica compacts etcd's history now and then.
   */
  lead(controllers: ControllerSet, onChange?: (leader: boolean) => void): void {
    this.election = LeaderElection.start(this.store.client, this.store.prefix, {
      replicaId: this.id,
      ttlSeconds: this.settings.leaderLeaseSeconds,
      onElected: (guard: WriteGuard) => {
        this.log.info({ replica: this.id, term: guard.createRevision }, 'elected leader');
        onChange?.(true);
        controllers.start(this.store.guarded(guard)).catch((err: Error) => this.log.error({ err: err.message }, 'leader controllers failed to start'));
        this.startCompaction();
      },
      onDeposed: (reason) => {
        this.log.warn({ replica: this.id, reason }, 'no longer the leader: controllers stopped');
        onChange?.(false);
        this.stopCompaction();
        controllers.stop().catch((err: Error) => this.log.error({ err: err.message }, 'leader controllers failed to stop'));
      },
      onWarning: (message) => this.log.warn({ replica: this.id }, message),
    });
  }

  get isLeader(): boolean {
    return this.election?.isLeader ?? false;
  }

  private startCompaction(): void {
    this.stopCompaction();
    const compact = () => {
      // Only while leader: two replicas compacting is harmless but wasteful.
      if (!this.isLeader) return;
      this.store.compact().catch((err: Error) => this.log.warn({ err: err.message }, 'etcd compaction failed; retried next time'));
    };
    this.compactTimer = setInterval(compact, COMPACT_EVERY_MS);
    this.compactTimer.unref();
  }

  private stopCompaction(): void {
    clearInterval(this.compactTimer);
    this.compactTimer = undefined;
  }

  /** Resigns, leaves the registry and revokes the lease: this replica's link records go at once. */
  async close(): Promise<void> {
    this.stopCompaction();
    await this.election?.close().catch(() => undefined);
    await this.registry?.close().catch(() => undefined);
    this.sessions.close();
    await this.lease.close().catch(() => undefined);
  }
}

/** The host name as a replica id (letters, digits, ".", "_", "-", starting with a letter or digit) and a random suffix. */
export function defaultReplicaId(host: string): string {
  const base = host.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 48);
  return `${base || 'cloudcore'}-${randomBytes(3).toString('hex')}`;
}
