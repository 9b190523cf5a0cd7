import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdCluster } from '../../helpers/etcdCluster.js';
import { startCloudcoreChild, type CloudcoreChild } from '../cloudcoreProcess.js';
import { promSum, scrapeProm } from './promText.js';

/**
 * The control plane under test: an etcd cluster (Debian's etcd, real members on loopback) and R
 * cloudcore replicas over it, or one cloudcore over SQLite, each a child process so its RSS and
 * CPU are its own.
 */

export type StoreKind = 'sqlite' | 'etcd';

export interface Replica {
  index: number;
  /** --replica-id (etcd) or 'sqlite'. */
  id: string;
  child: CloudcoreChild;
  /** Set once the benchmark SIGKILLed it. */
  killedAt: number | null;
}

export interface ControlPlaneOptions {
  store: StoreKind;
  replicas: number;
  tempDir: string;
  offlineAfterSeconds: number;
  /** Flags for every etcd member (quota, compaction). */
  etcdArgs: string[];
  /** cloudcore flags for every replica on etcd, after the store flags (leases, prefix). */
  replicaArgs: string[];
  log: (line: string) => void;
}

export class ControlPlane {
  private constructor(readonly store: StoreKind, readonly etcd: EtcdCluster | undefined, readonly replicas: Replica[]) {}

  static async start(opts: ControlPlaneOptions, hold: (plane: ControlPlane) => void): Promise<ControlPlane> {
    const etcd = opts.store === 'etcd' ? await EtcdCluster.start({ size: 3, extraArgs: opts.etcdArgs }) : undefined;
    const plane = new ControlPlane(opts.store, etcd, []);
    // Handed over before the replicas start, so a failure half-way still releases etcd.
    hold(plane);
    if (etcd) opts.log(`etcd: 3 members at ${etcd.endpoints} (${opts.etcdArgs.join(' ')})`);
    // Every replica of one fleet seals Secrets with the same key: the first one makes it.
    const secretKeyFile = join(opts.tempDir, 'secret-encryption.key');
    for (let i = 0; i < opts.replicas; i++) {
      const id = opts.store === 'etcd' ? `r${i}` : 'sqlite';
      const storeArgs = etcd
        ? ['--store', 'etcd', '--etcd-endpoints', etcd.endpoints, '--replica-id', id, '--secret-key-file', secretKeyFile,
          '--advertise-address', '127.0.0.1', ...opts.replicaArgs]
        : [];
      // Sequential on purpose: the first replica makes the CA and the operator tokens in etcd,
      // and the later ones find them instead of racing to make their own.
      const child = await startCloudcoreChild({
        dataDir: join(opts.tempDir, `cloudcore-${id}`),
        logPath: join(opts.tempDir, `cloudcore-${id}.log`),
        offlineAfterSeconds: opts.offlineAfterSeconds,
        readyTimeoutMs: 60_000,
        extraArgs: storeArgs,
      });
      plane.replicas.push({ index: i, id, child, killedAt: null });
      opts.log(`cloudcore ${id}: pid ${child.pid} at ${child.url}`);
    }
    return plane;
  }

  alive(): Replica[] {
    return this.replicas.filter((r) => r.killedAt === null && !r.child.exited());
  }

  /** GET /metrics of one replica, summed per metric name. */
  async metrics(r: Replica): Promise<Map<string, number>> {
    return scrapeProm(`${r.child.url}/metrics`, { authorization: `Bearer ${r.child.adminToken}` });
  }

  /** edgefleet_hub_sessions per replica; null for a dead one or one that did not answer. */
  async sessionsByReplica(): Promise<(number | null)[]> {
    return Promise.all(this.replicas.map(async (r) => {
      if (r.killedAt !== null) return null;
      return this.metrics(r).then((m) => promSum(m, 'edgefleet_hub_sessions')).catch(() => null);
    }));
  }

  /**
   * Times (ms since the epoch, from the pino line) at which a replica logged 'elected leader'.
   * The log is the contract every replica has; the edgefleet_replica_leader gauge may not exist.
   */
  electedAt(r: Replica): number[] {
    let text: string;
    try {
      text = readFileSync(r.child.logPath, 'utf8');
    } catch {
      return [];
    }
    const times: number[] = [];
    for (const line of text.split('\n')) {
      if (!line.includes('elected leader')) continue;
      try {
        const entry = JSON.parse(line) as { msg?: unknown; time?: unknown };
        if (entry.msg === 'elected leader' && typeof entry.time === 'number') times.push(entry.time);
      } catch {
        // a line being written; the next read sees it whole
      }
    }
    return times;
  }

  /** The live replica that was elected last, if any replica has logged an election. */
  currentLeader(): Replica | undefined {
    let best: { r: Replica; at: number } | undefined;
    for (const r of this.alive()) {
      const last = this.electedAt(r).at(-1);
      if (last !== undefined && (!best || last > best.at)) best = { r, at: last };
    }
    return best?.r;
  }

  /** The leader by its log, else by the edgefleet_replica_leader gauge (1 on the leader) if replicas export it. */
  async leader(): Promise<Replica | undefined> {
    const byLog = this.currentLeader();
    if (byLog) return byLog;
    return this.leaderByGauge(this.alive());
  }

  async leaderByGauge(among: Replica[]): Promise<Replica | undefined> {
    for (const r of among) {
      const gauge = await this.metrics(r).then((m) => promSum(m, 'edgefleet_replica_leader')).catch(() => null);
      if (gauge === 1) return r;
    }
    return undefined;
  }

  async kill(r: Replica): Promise<number> {
    r.killedAt = Date.now();
    await r.child.kill();
    return r.killedAt;
  }

  async stop(log: (line: string) => void): Promise<void> {
    await Promise.all(this.replicas.map(async (r) => {
      const code = await r.child.stop();
      if (code !== 0 && r.killedAt === null) log(`cloudcore ${r.id} exited with code ${code}`);
    }));
    await this.etcd?.stop();
  }
}
