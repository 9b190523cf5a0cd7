import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newKeyFileText } from '../../cloudcore/store/secretSealing.js';
import { EtcdCluster } from '../helpers/etcdCluster.js';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Several real cloudcore processes over one real etcd cluster (Debian's etcd on loopback), and
 * real edgecores linked to them: what docs/scale-out.md describes, on one machine.
 */
export class ReplicaFleet {
  readonly fleet = new Fleet();
  readonly replicas = new Map<string, Cloud>();
  readonly keyFile: string;

  private constructor(readonly etcd: EtcdCluster, readonly prefix: string) {
    this.keyFile = join(this.fleet.root, 'secret-encryption.key');
    writeFileSync(this.keyFile, newKeyFileText(), { mode: 0o600 });
  }

  static async start(opts: { etcdMembers?: number } = {}): Promise<ReplicaFleet> {
    const etcd = await EtcdCluster.start({ size: opts.etcdMembers ?? 3 });
    return new ReplicaFleet(etcd, `/edgefleet-test-${Date.now()}/`);
  }

  /** Starts replica `id` (plain HTTP on loopback unless `tls`), over this fleet's etcd and key file. */
  async startReplica(id: string, opts: { extra?: string[]; tls?: boolean; port?: number } = {}): Promise<Cloud> {
    const cloud = await this.fleet.startCloud({
      dataDir: join(this.fleet.root, `cloud-${id}`),
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
      extra: [
        '--store', 'etcd', '--etcd-endpoints', this.etcd.endpoints, '--etcd-prefix', this.prefix,
        '--secret-key-file', this.keyFile, '--replica-id', id,
        '--leader-lease-seconds', '2', '--replica-lease-seconds', '3', '--rollout-tick-ms', '200',
        ...(opts.extra ?? []),
      ],
    });
    this.replicas.set(id, cloud);
    return cloud;
  }

  replica(id: string): Cloud {
    const cloud = this.replicas.get(id);
    if (!cloud) throw new Error(`no replica ${id}`);
    return cloud;
  }

  /** The replica that says it leads now (its edgefleet_replica_leader gauge), if exactly one does. */
  async leader(): Promise<string | undefined> {
    const leaders: string[] = [];
    for (const [id, cloud] of this.replicas) {
      if (cloud.proc.exitCode !== undefined) continue;
      const text = await fetch(`${cloud.url}/metrics`, { headers: { authorization: `Bearer ${cloud.token}` } }).then((r) => r.text()).catch(() => '');
      if (new RegExp(`edgefleet_replica_leader\\{replica="${id}"\\} 1`).test(text)) leaders.push(id);
    }
    return leaders.length === 1 ? leaders[0] : undefined;
  }

  async waitLeader(timeoutMs = 20_000): Promise<string> {
    return waitFor('exactly one leader replica', () => this.leader(), timeoutMs, 100);
  }

  /** A node joined through `via` and its edgecore linked to `urls` (tried in the order given). */
  async startEdge(node: string, via: Cloud, urls: Cloud[], opts: { extra?: string[] } = {}): Promise<Edge> {
    const token = await api(via).token(node);
    return this.fleet.startEdge({
      node, cloudUrl: urls.map((c) => c.url).join(','), joinToken: token,
      extra: ['--cloud-url-order', 'listed', ...(opts.extra ?? [])],
    });
  }

  /** The cloud URL an edge's link is on now (its /status). */
  async linkedTo(edge: Edge): Promise<string | undefined> {
    const status = await this.fleet.edgeStatus(edge) as unknown as { link: { cloudUrl?: string; state: string } };
    return status.link.state === 'connected' ? status.link.cloudUrl : undefined;
  }

  async stop(): Promise<void> {
    await this.fleet.cleanup();
    await this.etcd.stop();
  }
}
