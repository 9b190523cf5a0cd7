import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerFactory } from 'fastify';
import { createServer as createHttpsServer } from 'node:https';
import pino from 'pino';
import type { AddressInfo } from 'node:net';
import type { AuditRecord, CloudFrame } from '../../protocol/index.js';
import type { AuditSink } from '../../cloudcore/api/index.js';
import { apiPlugin } from '../../cloudcore/api/index.js';
import type { EdgeChannel, EdgeTunnel } from '../../cloudcore/api/routes/nodeStreams.js';
import { OperatorRequests } from '../../cloudcore/hub/operatorRequests.js';
import { CertificateAuthority } from '../../cloudcore/pki/certificateAuthority.js';
import { clusterPeers } from '../../cloudcore/peers/clusterPeers.js';
import type { PeerClient } from '../../cloudcore/peers/peerClient.js';
import { peerPlugin } from '../../cloudcore/peers/peerPlugin.js';
import type { Store } from '../../cloudcore/store/store.js';
import type { TelemetryStore } from '../../cloudcore/telemetry/telemetryStore.js';

/**
 * Real replicas in miniature for the peer tests: HTTPS fastify servers on loopback with server
 * certificates from a real cloud CA (the project's own pki code), each with the operator API
 * and the peer plugin, sharing one object store as replicas share etcd. The node links are real
 * OperatorRequests whose frames a scripted edge answers.
 */

export const silentLog = pino({ level: 'silent' });

/** Temp dirs made by a test file, removed by `removeTempDirs` in its afterAll. */
const dirs: string[] = [];
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export async function makeCa(): Promise<CertificateAuthority> {
  return CertificateAuthority.open({ dataDir: tempDir('ef-peer-ca-') }, silentLog);
}

/**
 * A node's link answered by a script: logs give `line-1..line-<tail>` then, when following, one
 * `live-<n>` line every 20 ms until cancelled; exec echoes its command. Every frame the cloud
 * sent is kept, so tests see the ids and the cancels the edge got.
 */
export class ScriptedEdge {
  readonly frames: CloudFrame[] = [];
  readonly requests: OperatorRequests;
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** `quiet`: a followed log says nothing after its tail. */
  constructor(readonly node: string, private readonly quiet = false) {
    this.requests = new OperatorRequests(node, (frame) => { this.frames.push(frame); setImmediate(() => this.answer(frame)); });
  }

  private answer(frame: CloudFrame): void {
    if (frame.type === 'logsRequest') {
      const lines = Array.from({ length: frame.tail }, (_, i) => `${frame.workload} line-${i + 1}`);
      this.requests.onLogsData({ type: 'logsData', id: frame.id, lines, done: !frame.follow });
      if (frame.follow && this.quiet) {
        this.timers.set(frame.id, setInterval(() => {}, 60_000));
      } else if (frame.follow) {
        let n = 0;
        this.timers.set(frame.id, setInterval(() => this.requests.onLogsData({ type: 'logsData', id: frame.id, lines: [`live-${++n}`], done: false }), 20));
      }
    } else if (frame.type === 'streamCancel') {
      clearInterval(this.timers.get(frame.id));
      this.timers.delete(frame.id);
    } else if (frame.type === 'execRequest') {
      if (frame.workload === 'missing') {
        this.requests.onExecResult({ type: 'execResult', id: frame.id, exitCode: null, stdout: '', stderr: '', timedOut: false, error: `no workload "${frame.workload}" here` });
      } else {
        this.requests.onExecResult({ type: 'execResult', id: frame.id, exitCode: 0, stdout: `${frame.command.join(' ')}\n`, stderr: '', timedOut: false });
      }
    }
  }

  /** Follow streams still being fed (not cancelled). */
  get liveStreams(): number { return this.timers.size; }

  /** The link drops: open requests end, streams stop. */
  disconnect(): void {
    for (const timer of this.timers.values()) clearInterval(timer);
    this.timers.clear();
    this.requests.closeAll('the link went away');
  }
}

/** A replica's own links: the hub's part of the EdgeTunnel. */
export class LocalLinks implements EdgeTunnel {
  readonly edges = new Map<string, ScriptedEdge>();
  async requestsFor(node: string): Promise<EdgeChannel | undefined> { return this.edges.get(node)?.requests; }
  connect(node: string, opts: { quiet?: boolean } = {}): ScriptedEdge {
    const edge = new ScriptedEdge(node, opts.quiet);
    this.edges.set(node, edge);
    return edge;
  }
}

export interface Replica {
  id: string;
  url: string;
  app: FastifyInstance;
  links: LocalLinks;
  client: PeerClient;
}

export interface ReplicaOptions {
  id: string;
  ca: CertificateAuthority;
  /** The CA whose bundle this replica trusts for its peers (the cluster CA; another one in the refusal test). */
  trust: CertificateAuthority;
  store: Store;
  replicaToken: string;
  operatorToken: string;
  /** The session registry: node → replica id. */
  owners: Map<string, string>;
  /** The replica registry: replica id → URL. */
  urls: Map<string, string>;
  /** This replica's own telemetry; with it, the API answers telemetry from every replica (FederatedTelemetry). */
  telemetry?: TelemetryStore | undefined;
  /** How often its followed log streams to peers say they are alive. */
  heartbeatMs?: number;
  /** The deadline of its telemetry calls to peers (PeerClient's default otherwise). */
  requestTimeoutMs?: number;
  /** Where its warnings go (silent otherwise). */
  log?: pino.Logger;
  /** Where the replica's operator API writes its audit records. */
  audit?: AuditSink;
}

export async function startReplica(opts: ReplicaOptions): Promise<Replica> {
  const issued = await opts.ca.issueServer(['localhost', '127.0.0.1'], 3600);
  // As server.ts does: HTTPS through a factory keeps the instance typed as the API expects.
  const serverFactory: FastifyServerFactory = (handler) => createHttpsServer({ cert: issued.pem, key: issued.keyPem }, handler) as unknown as ReturnType<FastifyServerFactory>;
  const app: FastifyInstance = Fastify({ serverFactory, genReqId: () => randomUUID(), loggerInstance: silentLog as FastifyBaseLogger, forceCloseConnections: true });
  const links = new LocalLinks();
  const peers = clusterPeers({
    selfId: opts.id, replicaToken: opts.replicaToken, trust: { caPem: opts.trust.bundlePem }, hub: links, localTelemetry: opts.telemetry, log: opts.log ?? silentLog,
    ...(opts.requestTimeoutMs !== undefined ? { deadlines: { requestTimeoutMs: opts.requestTimeoutMs } } : {}),
    directory: {
      ownerOf: (node) => opts.owners.get(node),
      peerUrl: (id) => opts.urls.get(id),
      replicas: () => [...opts.urls].map(([id, url]) => ({ id, url })),
    },
  });
  await app.register(apiPlugin, {
    store: opts.store, tokens: { admin: opts.operatorToken, readonly: `${opts.operatorToken}-ro` }, tunnel: peers.tunnel,
    ...(peers.telemetry ? { telemetry: peers.telemetry } : {}), ...(opts.audit ? { audit: opts.audit } : {}),
  });
  await app.register(peerPlugin, { ...peers.plugin, ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  opts.urls.set(opts.id, url);
  return { id: opts.id, url, app, links, client: peers.client };
}

export async function stopReplica(replica: Replica): Promise<void> {
  for (const edge of replica.links.edges.values()) edge.disconnect();
  replica.client.close();
  await replica.app.close();
}

/** The audit log kept in memory: the records are what a test compares edge frame ids with. */
export class MemoryAudit implements AuditSink {
  readonly records: AuditRecord[] = [];
  append(record: AuditRecord): void { this.records.push(record); }
  async query(): Promise<{ items: AuditRecord[]; truncated: boolean }> { return { items: [...this.records], truncated: false }; }
}

export const randomToken = () => randomBytes(24).toString('base64url');
