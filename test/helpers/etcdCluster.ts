import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

/**
 * A real etcd cluster on loopback, from Debian's `etcd` binary (package etcd-server), for tests
 * and benchmarks: each member its own process, data dir and pair of ports in one temp dir. A
 * member can be killed with SIGKILL and started again over its own data dir, as a crashed host
 * would come back.
 */

export const ETCD_BINARY = process.env.EF_TEST_ETCD_BINARY ?? '/usr/bin/etcd';

/** Why etcd tests cannot run here, or undefined when they can (for `it.skipIf`/`describe.skipIf`). */
export function etcdUnavailable(): string | undefined {
  if (!existsSync(ETCD_BINARY)) return `no etcd binary at ${ETCD_BINARY} (Debian package etcd-server)`;
  const probe = spawnSync(ETCD_BINARY, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status !== 0) return `${ETCD_BINARY} --version failed: ${probe.stderr || probe.error?.message}`;
  return undefined;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  process: ChildProcess | undefined;
}

export interface EtcdClusterOptions {
  /** Members (default 3). */
  size?: number;
  /** Extra flags for every member, e.g. ['--max-txn-ops', '256']. */
  extraArgs?: string[];
}

export class EtcdCluster {
  private constructor(readonly dir: string, readonly members: EtcdMember[], private readonly extraArgs: string[]) {}

  /** Client URLs of every member, comma-separated, as `--etcd-endpoints` takes them. */
  get endpoints(): string {
    return this.members.map((m) => m.clientUrl).join(',');
  }

  get endpointList(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  static async start(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const size = opts.size ?? 3;
    const dir = await mkdtemp(join(tmpdir(), 'edgefleet-etcd-'));
    const members: EtcdMember[] = [];
    for (let i = 0; i < size; i++) {
      const [client, peer] = [await freeLoopbackPort(), await freeLoopbackPort()];
      members.push({ name: `m${i}`, clientUrl: `http://127.0.0.1:${client}`, peerUrl: `http://127.0.0.1:${peer}`, dataDir: join(dir, `m${i}`), process: undefined });
    }
    const cluster = new EtcdCluster(dir, members, opts.extraArgs ?? []);
    try {
      for (const m of members) cluster.spawnMember(m, 'new');
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private spawnMember(m: EtcdMember, state: 'new' | 'existing'): void {
    const initialCluster = this.members.map((x) => `${x.name}=${x.peerUrl}`).join(',');
    const child = spawn(ETCD_BINARY, [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster, '--initial-cluster-state', state, '--initial-cluster-token', `edgefleet-test-${this.dir}`,
      // Tests want failover in a second or two, not the defaults' tens of seconds.
      '--heartbeat-interval', '50', '--election-timeout', '500',
      '--log-level', 'error', '--logger', 'zap',
      ...this.extraArgs,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000); });
    child.on('exit', (code, signal) => {
      if (m.process === child) m.process = undefined;
      if (code !== 0 && signal === null && stderr) process.stderr.write(`etcd member ${m.name} exited ${code}: ${stderr}\n`);
    });
    m.process = child;
  }

  /** Waits until every running member answers /health with a leader. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    for (const m of this.members) {
      if (!m.process) continue;
      await waitFor(`etcd member ${m.name} healthy`, async () => {
        const res = await fetch(`${m.clientUrl}/health`).catch(() => undefined);
        if (!res) return false;
        const body = (await res.json().catch(() => ({}))) as { health?: string };
        return body.health === 'true';
      }, timeoutMs, 100);
    }
  }

  /** SIGKILL of one member (its data dir stays). */
  async kill(index: number): Promise<void> {
    const m = this.members[index]!;
    const child = m.process;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts a killed member again over its own data dir. */
  async restart(index: number): Promise<void> {
    const m = this.members[index]!;
    if (m.process) return;
    this.spawnMember(m, 'existing');
  }

  /** Kills every member and removes the temp dir. */
  async stop(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.kill(i);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A free TCP port on 127.0.0.1 (bound once and released; the OS does not hand it out again at once). */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
