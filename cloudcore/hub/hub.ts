import type { RouteFrameSink } from './routeTraffic.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { TLSSocket } from 'node:tls';
import { HUB_PATHS, MAX_FRAME_BYTES, NODE_HEADER, OFFLINE_AFTER_MS, type NodeCredential } from '../../protocol/index.js';
import { errorBody } from '../http/apiError.js';
import { DEFAULT_NODE_CERT_GRACE_SECONDS, DEFAULT_NODE_CERT_LIFETIME_SECONDS } from '../../protocol/certificatePolicy.js';
import type { ServerTls } from '../pki/serverTls.js';
import { FencedError, StoreError, type Store, type Watch, type WriteGuard } from '../store/store.js';
import { NodeStatsHistory } from '../telemetry/nodeStatsHistory.js';
import type { TelemetryStore } from '../telemetry/telemetryStore.js';
import { acceptsBearer, acceptsCertificate, verifyNodeCredential } from './credentials.js';
import { identityRoutes } from './identityRoutes.js';
import { nodeFromPeerCertificate } from './peerCertificate.js';
import { decideAdmission } from './admission.js';
import { EventBudget, type EventBudgetSettings } from './eventBudget.js';
import { LinkQuality } from './linkQuality.js';
import { NodeSession, type HubCounters } from './nodeSession.js';
import { updateNodeStatus } from '../store/readModifyWrite.js';
import { AgentUpgradeChannel, type AgentArtefacts } from './agentUpgrades.js';
import { eachAtMost } from '../limits/eachAtMost.js';
import { livenessDue } from './livenessBudget.js';

export interface HubOptions {
  store: Store;
  /** Route traffic from edges (routed messages, route counters, publish answers); refused without it. */
  routes?: RouteFrameSink;
  /** Where device telemetry from edges goes; without it telemetry entries are acked and dropped. */
  telemetry?: TelemetryStore;
  log: Logger;
  /** A session silent for this long is considered dead and closed (node goes Offline). */
  offlineAfterMs?: number;
  /** How often liveness (lastSeen, acked revision) is written to Node status. */
  livenessFlushMs?: number;
  /** Edge links settling at once (upgrade → snapshot acked or resume started); more get 503 + Retry-After. */
  maxSettlingSessions?: number;
  /** Events each node may have stored per second and in one burst; past it they are dropped and counted. */
  eventBudget?: EventBudgetSettings;
  /** cloudcore's HTTPS: edges then link with mutual TLS, their identity taken from the client certificate. */
  tls?: ServerTls | undefined;
  nodeCertLifetimeSeconds?: number;
  nodeCertGraceSeconds?: number;
  /** The agent artefacts cloudcore serves under /dist: named in the agentUpgrade frames it sends. */
  artefacts?: AgentArtefacts;
  /** Which replica holds which node's link (several cloudcores over one etcd store). */
  authority?: SessionAuthority;
  /** Resend each live link's whole desired set this often (see SessionDeps.resyncSweepMs). */
  resyncSweepMs?: number;
}

/**
 * Which replica holds each node's link, when cloudcore runs as several replicas over one store
 * (cloudcore/cluster/sessionRegistry.ts). The replica that holds a link is the node's authority:
 * it claims the node when the link opens, and only if its claim is still the current one when the
 * link ends may it mark the node Offline. Without it (one cloudcore) the hub is its own authority.
 */
export interface SessionAuthority {
  /** Records that this replica holds the node's link now; resolves to the claim, for `release`. */
  claim(node: string): Promise<number>;
  /** Removes the claim if it is still the current one; true if it was (nobody holds the node now). */
  release(node: string, claim: number): Promise<boolean>;
  /** The guard under which a node nobody holds may be marked Offline (no replica claimed it meanwhile). */
  absentGuard(node: string): WriteGuard;
  /** Whether some replica (this one included) holds the node's link now. */
  isHeldAnywhere(node: string): boolean;
  /** Calls `onMoved` when another replica claims a node whose link this replica holds. */
  onTakenOver(onMoved: (node: string, replica: string) => void): void;
}

/** What a live link was admitted with: a certificate serial, or a bearer credential's hash (plain HTTP). */
type LinkCredential = { kind: 'certificate'; serial: string } | { kind: 'bearer'; hash: string };

export const DEFAULT_EVENT_BUDGET: EventBudgetSettings = { perSecond: 20, burst: 200 };

export const DEFAULT_MAX_SETTLING_SESSIONS = 1000;

/**
 * The edge-facing side of cloudcore: `POST /hub/v1/join` (token → node credential) and the
 * WebSocket `GET /hub/v1/connect`, one NodeSession per connected node.
 */
export class Hub {
  readonly sessions = new Map<string, NodeSession>();
  readonly counters: HubCounters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, refused: 0, snapshots: 0, sweeps: 0, framesInByType: {}, framesOutByType: {} };
  /** Reconnects and round trips per node, and each node's last hour of CPU/memory/disk (dashboard). */
  readonly linkQuality = new LinkQuality();
  readonly nodeStats = new NodeStatsHistory();
  /** Per-node event rate limit (its drop counts feed /metrics). */
  readonly eventBudget: EventBudget;
  private readonly upstreamCursors = new Map<string, { epoch: string; seq: number }>();
  private readonly persistedSeen = new Map<string, number>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
  private livenessTimer: NodeJS.Timeout | undefined;
  /** Upgrades answered 503 by admission control (metrics). */
  refusedUpgrades = 0;
  private nodeWatch: Watch | undefined;
  private credentialWatch: Watch | undefined;
  private readonly offlineAfterMs: number;
  private readonly livenessFlushMs: number;
  private closing = false;
  /** Links admitted and not yet settled (see admission.ts). */
  private settling = 0;
  private readonly linkCredentials = new WeakMap<NodeSession, LinkCredential>();
  /** Each session's claim in the session registry (cluster mode), once made. */
  private readonly claims = new WeakMap<NodeSession, Promise<number | undefined>>();
  private readonly agentUpgrades: AgentUpgradeChannel;

  constructor(private readonly opts: HubOptions) {
    this.offlineAfterMs = opts.offlineAfterMs ?? OFFLINE_AFTER_MS;
    this.livenessFlushMs = opts.livenessFlushMs ?? 15_000;
    this.eventBudget = new EventBudget(opts.eventBudget ?? DEFAULT_EVENT_BUDGET, opts.log);
    this.agentUpgrades = new AgentUpgradeChannel(opts.store, opts.log, opts.artefacts);
    opts.authority?.onTakenOver((node, replica) => this.sessions.get(node)?.drop(`the node's link moved to replica ${replica}`));
  }

  /** Whether some replica holds the node's link now (this one, or another in cluster mode). */
  isConnected(node: string): boolean {
    return this.sessions.has(node) || (this.opts.authority?.isHeldAnywhere(node) ?? false);
  }

  /** Registers the join route and takes over WebSocket upgrades on the server's connect path. */
  async register(app: FastifyInstance): Promise<void> {
    // Join, renew and the CA bundle are declared and parsed like the API's routes.
    await app.register(identityRoutes, {
      store: this.opts.store, log: this.opts.log, tls: this.opts.tls,
      nodeCertLifetimeSeconds: this.opts.nodeCertLifetimeSeconds ?? DEFAULT_NODE_CERT_LIFETIME_SECONDS,
      nodeCertGraceSeconds: this.opts.nodeCertGraceSeconds ?? DEFAULT_NODE_CERT_GRACE_SECONDS,
    });
    app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.onUpgrade(req, socket, head);
    });
    await this.watchIdentities();
    this.livenessTimer = setInterval(() => void this.checkLiveness(), this.livenessFlushMs);
    this.livenessTimer.unref();
    // preClose: upgraded sockets are not the HTTP server's to close; end them first or
    // server.close() waits for every edge to hang up on its own.
    app.addHook('preClose', async () => this.close());
  }

  /**
   * Follows Node and NodeCredential changes for the live links. If either watch ends on its own
   * (a distributed store compacted past it), both are opened again from now and every live link
   * is checked against what the store holds, so a change missed in between still ends its link.
   */
  private async watchIdentities(): Promise<void> {
    const onError = () => { void this.rewatchIdentities(); };
    // A deleted node loses its credential (API) and its live link (here).
    this.nodeWatch = await this.opts.store.watch({ kind: 'Node', fromRevision: await this.opts.store.revision() }, (event) => {
      if (event.type !== 'DELETED') {
        // The upgrade controller changed the agent version this node should run: tell it now.
        const session = this.sessions.get(event.object.metadata.name);
        if (session && event.object.kind === 'Node') this.agentUpgrades.offer(session, event.object.spec.agent);
        return;
      }
      this.disconnect(event.object.metadata.name, 'node deleted');
      this.linkQuality.forget(event.object.metadata.name);
      this.nodeStats.forget(event.object.metadata.name);
      this.eventBudget.forget(event.object.metadata.name);
    }, onError);
    // A link whose certificate or credential is no longer accepted (revoked, node deleted, the
    // node joined again) ends at once. Watched, not called, so it holds for whatever removes or
    // replaces one, on any replica; a renewal keeps the link's own serial, so it stays up.
    this.credentialWatch = await this.opts.store.watch({ kind: 'NodeCredential', fromRevision: await this.opts.store.revision() }, (event) => {
      if (event.type === 'ADDED') return;
      const node = event.object.metadata.name;
      const session = this.sessions.get(node);
      if (!session) return;
      if (event.type === 'MODIFIED' && event.object.kind === 'NodeCredential' && this.stillAccepted(session, event.object)) return;
      const why = event.type === 'DELETED' ? 'the node\'s identity was revoked' : 'the node joined again with a new token: the identity of this link is no longer valid';
      this.opts.log.info({ node, reason: why }, 'closing the link of a node whose identity ended');
      this.disconnect(node, why);
    }, onError);
  }

  private async rewatchIdentities(): Promise<void> {
    if (this.closing) return;
    this.nodeWatch?.close();
    this.credentialWatch?.close();
    try {
      await this.watchIdentities();
      for (const session of [...this.sessions.values()]) {
        const record = await this.opts.store.get('NodeCredential', session.node);
        if (!record || !this.stillAccepted(session, record)) this.disconnect(session.node, 'the node\'s identity is no longer valid');
      }
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not watch node identities again; retrying');
      setTimeout(() => void this.rewatchIdentities(), 1000).unref();
    }
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // The socket is ours from here until ws takes it; a client that resets it meanwhile (while the
    // credential check waits on the store) must not be an uncaught 'error' that ends cloudcore.
    socket.on('error', (err) => this.opts.log.debug({ remote: req.socket.remoteAddress, err: err.message }, 'edge connect socket error'));
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== HUB_PATHS.connect) return rejectUpgrade(socket, 404, 'not found');
    const admission = decideAdmission(this.settling, this.opts.maxSettlingSessions ?? DEFAULT_MAX_SETTLING_SESSIONS);
    if (!admission.admit) {
      this.refusedUpgrades++;
      return rejectUpgrade(socket, 503, 'cloudcore is settling other edge links; retry after the given seconds',
        { 'Retry-After': String(admission.retryAfterSeconds) });
    }
    // The slot is held from here (the credential check reads the store) until the link settles or ends.
    this.settling++;
    let held = true;
    const release = (): void => { if (held) { held = false; this.settling--; } };
    socket.once('close', release);
    try {
      await this.admit(req, socket, head, release);
    } catch (err) {
      release();
      throw err;
    }
  }

  private async admit(req: IncomingMessage, socket: Duplex, head: Buffer, release: () => void): Promise<void> {
    let identity: Awaited<ReturnType<Hub['linkIdentity']>>;
    try {
      identity = await this.linkIdentity(req);
    } catch (err) {
      // The store could not be read (etcd without quorum): not a verdict on the credential. A 401
      // would tell the edge its identity is gone; a 503 tells it to come back.
      release();
      this.opts.log.warn({ remote: req.socket.remoteAddress, err: (err as Error).message }, 'edge connect deferred: the store did not answer');
      return rejectUpgrade(socket, 503, 'cloudcore cannot read its store now; retry after the given seconds', { 'Retry-After': '5' });
    }
    if (!identity.ok) {
      release();
      this.opts.log.warn({ remote: req.socket.remoteAddress, node: identity.node, reason: identity.reason }, 'edge connect refused');
      return rejectUpgrade(socket, 401, identity.reason);
    }
    const { node } = identity;
    const claimed = req.headers[NODE_HEADER];
    if (claimed !== undefined && claimed !== node) {
      release();
      this.opts.log.warn({ node, claimed }, 'edge connect refused: header claims another node');
      return rejectUpgrade(socket, 403, `credential belongs to "${node}", not "${String(claimed)}"`);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(node, ws, release, identity.credential));
  }

  /**
   * Who is linking. Over HTTPS only the client certificate counts: signed by this cloud's CA for
   * a node, not expired, and its serial still on the node's allow-list. Over plain HTTP a bearer
   * credential, unexpired. Never a header or a frame.
   */
  private async linkIdentity(req: IncomingMessage): Promise<{ ok: true; node: string; credential: LinkCredential } | { ok: false; reason: string; node?: string }> {
    const { tls, store } = this.opts;
    if (tls) {
      const peer = nodeFromPeerCertificate(req.socket as TLSSocket, tls.ca);
      if (!peer.ok) return { ok: false, reason: peer.reason };
      if (peer.expired) return { ok: false, node: peer.node, reason: `client certificate expired at ${peer.notAfter.toISOString()}: renew it (POST ${HUB_PATHS.renew}) or join again with a new token` };
      const record = await store.get('NodeCredential', peer.node).catch(rethrowUnavailable);
      if (!acceptsCertificate(record, peer.serial)) {
        return { ok: false, node: peer.node, reason: `certificate ${peer.serial} of node "${peer.node}" was revoked or replaced; join again with a new token` };
      }
      return { ok: true, node: peer.node, credential: { kind: 'certificate', serial: peer.serial } };
    }
    const auth = req.headers.authorization ?? '';
    const bearer = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const verified = bearer ? await verifyNodeCredential(store, bearer).catch(rethrowUnavailable) : undefined;
    if (!verified) return { ok: false, reason: 'node credential missing, expired or not valid; join with a token first' };
    return { ok: true, node: verified.node, credential: { kind: 'bearer', hash: verified.hash } };
  }

  private stillAccepted(session: NodeSession, record: NodeCredential): boolean {
    const credential = this.linkCredentials.get(session);
    if (!credential) return false;
    return credential.kind === 'certificate' ? acceptsCertificate(record, credential.serial) : acceptsBearer(record, credential.hash);
  }

  private attach(node: string, ws: WebSocket, settled: () => void, credential: LinkCredential): void {
    const previous = this.sessions.get(node);
    // One live link per node: a reconnect after a half-open TCP connection replaces the old one.
    if (previous) previous.terminate(4000, 'replaced by a newer connection');
    const claim = this.opts.authority?.claim(node);
    const session = new NodeSession(node, ws, {
      ...(claim ? { claimed: claim.catch(() => undefined) } : {}),
      store: this.opts.store,
      ...(this.opts.telemetry ? { telemetry: this.opts.telemetry } : {}),
      log: this.opts.log,
      counters: this.counters,
      eventBudget: this.eventBudget,
      upstreamCursors: this.upstreamCursors,
      agentUpgrades: this.agentUpgrades,
      ...(this.opts.routes ? { routes: this.opts.routes } : {}),
      ...(this.opts.resyncSweepMs !== undefined ? { resyncSweepMs: this.opts.resyncSweepMs } : {}),
      onClose: (s) => { settled(); void this.onSessionClosed(s); },
      onSettled: settled,
      onPing: (n, ping) => {
        if (ping.rttMs !== undefined) this.linkQuality.recordRtt(n, ping.rttMs);
        if (ping.stats) this.nodeStats.record(n, Date.now(), ping.stats);
      },
    });
    this.linkCredentials.set(session, credential);
    if (claim) {
      this.claims.set(session, claim.catch((err: Error) => {
        // Unclaimed, the link still works here; another replica cannot route this node's logs and
        // exec to it, and the leader may take it for Offline: end it, the edge reconnects.
        this.opts.log.warn({ node, err: err.message }, 'could not record which replica holds the link; closing it');
        session.terminate(1013, 'cloudcore could not register the link; reconnect');
        return undefined;
      }));
    }
    this.linkQuality.recordOpen(node, Date.now());
    this.sessions.set(node, session);
    // The hello writes lastSeen; the next liveness write is due a full interval later.
    this.persistedSeen.set(node, Date.now());
  }

  private async onSessionClosed(session: NodeSession): Promise<void> {
    if (this.sessions.get(session.node) !== session) return; // already replaced
    this.sessions.delete(session.node);
    // cloudcore going down is not the node going offline; the lifecycle controller decides after restart.
    if (this.closing) return;
    let store = this.opts.store;
    const authority = this.opts.authority;
    if (authority) {
      // Only the replica whose claim is still current speaks for the node: a link that moved to
      // another replica is not the node going offline.
      const claim = await this.claims.get(session);
      if (claim === undefined || !(await authority.release(session.node, claim).catch(() => false))) return;
      store = store.guarded(authority.absentGuard(session.node));
    }
    const nowIso = new Date().toISOString();
    await updateNodeStatus(store, session.node, (n) => ({
      ...n.status,
      phase: 'Offline',
      since: n.status.phase === 'Offline' ? n.status.since : nowIso,
      lastSeen: new Date(session.lastSeen).toISOString(),
      ackedRevision: Math.max(n.status.ackedRevision, session.ackedRevision),
    })).catch((err: Error) => {
      if (err instanceof FencedError) return; // another replica holds the node's link by now
      this.opts.log.error({ node: session.node, err: err.message }, 'could not mark node offline');
    });
  }

  /** Closes silent sessions and writes lastSeen/acked revision of live ones (throttled). */
  private async checkLiveness(): Promise<void> {
    const now = Date.now();
    const linked: NodeSession[] = [];
    for (const session of [...this.sessions.values()]) {
      if (now - session.lastSeen > this.offlineAfterMs) {
        this.opts.log.warn({ node: session.node }, 'no heartbeat: closing link');
        session.terminate(4008, 'heartbeat timeout');
        continue;
      }
      linked.push(session);
    }
    const budget = Math.ceil(LIVENESS_WRITES_PER_SECOND * this.livenessFlushMs / 1000);
    const names = new Set(livenessDue(linked, this.persistedSeen, budget));
    const due = linked.filter((session) => names.has(session.node));
    for (const session of due) this.persistedSeen.set(session.node, session.lastSeen);
    // Several in flight: over etcd each write is a round trip, and one at a time a replica with
    // 10,000 links took longer than the interval to write them all.
    await eachAtMost(due, LIVENESS_WRITES_IN_FLIGHT, async (session) => {
      await updateNodeStatus(this.opts.store, session.node, (n) => ({
        ...n.status,
        lastSeen: new Date(session.lastSeen).toISOString(),
        ackedRevision: Math.max(n.status.ackedRevision, session.ackedRevision),
      })).catch((err: Error) => this.opts.log.error({ node: session.node, err: err.message }, 'could not record liveness'));
    });
  }

  /** The request channel (logs, exec) of a node connected to this replica, for the API (EdgeTunnel). */
  async requestsFor(node: string) {
    return this.sessions.get(node)?.requests;
  }

  /** Ends a node's session, e.g. when the node was deleted. */
  disconnect(node: string, reason: string): void {
    this.sessions.get(node)?.terminate(4004, reason);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.nodeWatch?.close();
    this.credentialWatch?.close();
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    for (const session of [...this.sessions.values()]) session.terminate(1001, 'cloudcore shutting down');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/** A store that cannot answer (503) is rethrown; any other failure reads as "no such credential". */
function rethrowUnavailable(err: unknown): undefined {
  if (err instanceof StoreError && err.statusCode === 503) throw err;
  return undefined;
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' };

function rejectUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(errorBody(status, message));
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n${extra}`
    + `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Liveness writes a pass keeps in flight (see checkLiveness). */
const LIVENESS_WRITES_IN_FLIGHT = 32;
/** Liveness writes per second a replica spends at most: every node each minute up to 3,000 links. */
const LIVENESS_WRITES_PER_SECOND = 50;
