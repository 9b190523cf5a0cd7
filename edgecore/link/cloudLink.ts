import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import {
  CloudFrameSchema, HEARTBEAT_INTERVAL_MS, HUB_PATHS, IgnoredFieldNotes, LINK_FEATURES, NODE_HEADER, PROTOCOL_VERSION, parseFrame,
  type AgentInfoSchema, type AgentUpgradeFrame, type AgentUpgradeStatus, type CloudFrame, type EdgeFrame, type NodeStatsSample, type SyncFrame, type UpstreamEntry,
} from '../../protocol/index.js';
import type { z } from 'zod';
import { DEFAULT_BACKOFF, parseRetryAfterMs, retryDelayMs, type BackoffPolicy } from './backoff.js';
import { describeCloudError } from './cloudError.js';
import { CloudUrlRing, type CloudUrlOrder } from './cloudUrls.js';
import { EdgeOperatorRequests } from './operatorRequests.js';
import type { Runtime } from '../runtime/runtime.js';
import type { LinkAuth } from './linkAuth.js';

/**
 * The edge end of the cloud link. Durable state lives behind `LinkState` (the edge's SQLite
 * in edgecore, an in-memory stand-in in the fan-out benchmark); the link only moves frames:
 * hello → welcome → sync (commit, then ack) and outbox → upstream (drop on upstreamAck).
 */
export interface LinkState {
  epoch(): string;
  lastRevision(): number;
  /** Must be durable when it returns: the ack that follows promises the cloud it is. */
  applySync(frame: SyncFrame): { changed: string[]; removed: string[]; devicesChanged?: boolean; routesChanged?: boolean };
  pending(limit: number, onUnreadable?: (seq: number, error: string) => void): UpstreamEntry[];
  ackUpTo(seq: number): number;
}

export type LinkPhase = 'connecting' | 'connected' | 'disconnected' | 'stopped';

export interface LinkStats {
  connects: number;
  syncFrames: number;
  snapshots: number;
  changesReceived: number;
  upstreamSent: number;
  errorsFromCloud: number;
  bytesIn: number;
  bytesOut: number;
}

/** How long a heartbeat may go unanswered before the link is given up (edgecore --pong-timeout-seconds). */
export const DEFAULT_PONG_TIMEOUT_MS = 15_000;

export interface CloudLinkOptions {
  /** cloudcore's URL, or the URLs of several replicas of one fleet: the link walks them (cloudUrls.ts). */
  cloudUrl: string | readonly string[];
  /** How the replicas are ordered (default shuffled); `random` shuffles them (tests fix it). */
  cloudUrlOrder?: CloudUrlOrder;
  random?: () => number;
  node: string;
  /** A fixed bearer credential (the fan-out benchmark's simulated edges); edgecore passes `auth`. */
  credential?: string;
  /** Asked at every connect: the node's current TLS material or credential (a renewal is used by the next connect). */
  auth?: () => LinkAuth | null;
  state: LinkState;
  agent: z.infer<typeof AgentInfoSchema>;
  heartbeatMs?: number;
  /**
   * A ping with nothing heard from the cloud for this long ends the link (default 15 s). Without
   * it a silent partition is only noticed after 2.5 silent heartbeats, and a link that comes back
   * waits for TCP's retransmission back-off (tens of seconds after a minute's cut).
   */
  pongTimeoutMs?: number;
  backoff?: BackoffPolicy;
  /** Upstream entries per frame. */
  batchSize?: number;
  maxPayload?: number;
  log?: { info(o: object, m?: string): void; warn(o: object, m?: string): void };
  /** Runs operator requests (logs, exec) that arrive over the link. */
  runtime?: Runtime;
  /** The node's newest resource sample not sent yet; it rides the next heartbeat. */
  nodeStats?: () => NodeStatsSample | undefined;
}

export interface CloudLinkEvents {
  desired: [{ changed: string[]; removed: string[]; devicesChanged?: boolean; routesChanged?: boolean; mode: 'snapshot' | 'delta' }];
  /** Route traffic from the cloud (devices/routes/): acks of routed messages, operator publishes. */
  routeFrame: [Extract<CloudFrame, { type: 'routedAck' | 'publishRequest' }>];
  phase: [LinkPhase];
  /** The cloud's desired agent version (docs/install.md, "Upgrade"). */
  agentUpgrade: [AgentUpgradeFrame];
}

export class CloudLink extends EventEmitter<CloudLinkEvents> {
  phase: LinkPhase = 'disconnected';
  /** When the link last went down (null while connected or before the first connect). */
  downSince: number | null = Date.now();
  lastError: string | null = null;
  /** The cloud refused the last connect with HTTP 401 (identity not accepted); cleared by a welcome. */
  refusedIdentity = false;
  /** Round trip of the last answered heartbeat (ping → pong), ms; reported to the cloud on the next ping. */
  rttMs: number | null = null;
  private pingInFlight: { t: number; sentAt: number } | undefined;
  readonly stats: LinkStats = { connects: 0, syncFrames: 0, snapshots: 0, changesReceived: 0, upstreamSent: 0, errorsFromCloud: 0, bytesIn: 0, bytesOut: 0 };
  private ws: WebSocket | undefined;
  /** Consecutive failed connects since the last welcome. */
  private failures = 0;
  /** Retry-After the cloud sent with its last refusal (503), honoured by the next reconnect. */
  private retryAfterMs: number | null = null;
  /** Replicas in a row that shed this edge (503 + Retry-After), and the longest wait asked. */
  private shedInRow = 0;
  private shedWaitMs = 0;
  /** The next reconnect is ours (renewal, cursor reset), not the replica's failure: stay on it. */
  private stayOnReplica = false;
  /** The replicas this edge may link to, in the order it tries them. */
  readonly urls: CloudUrlRing;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;
  private welcomed = false;
  /** The cloud's welcome listed `routes`: an older cloud would refuse route frames. */
  cloudTakesRoutes = false;
  private upstreamInFlight: number | null = null;
  private flushQueued = false;
  private readonly requests: EdgeOperatorRequests | undefined;
  private readonly ignoredFields = new IgnoredFieldNotes();

  constructor(private readonly opts: CloudLinkOptions) {
    super();
    this.urls = new CloudUrlRing(typeof opts.cloudUrl === 'string' ? [opts.cloudUrl] : opts.cloudUrl, {
      ...(opts.cloudUrlOrder ? { order: opts.cloudUrlOrder } : {}), ...(opts.random ? { random: opts.random } : {}),
    });
    this.requests = opts.runtime ? new EdgeOperatorRequests(opts.runtime, (frame) => this.send(frame), opts.log) : undefined;
  }

  /** The URL the link is on now (or is trying). */
  get cloudUrl(): string { return this.urls.current(); }

  start(): void {
    if (this.phase === 'stopped') return;
    this.connect();
  }

  /** Tells the link the outbox has something new. */
  notifyOutbox(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => { this.flushQueued = false; this.flushUpstream(); });
  }

  /**
   * Drops the connection so the next one starts again from the edge's sync cursor (after the
   * cursor was reset: see MetaStore.resetSyncCursor). Nothing happens while no connection is
   * open or being made: the next one reads the cursor anyway.
   */
  reconnect(): void {
    if (this.phase === 'stopped' || this.ws === undefined || this.ws.readyState === WebSocket.CLOSED) return;
    this.stayOnReplica = this.welcomed;
    this.ws.terminate();
  }

  async stop(): Promise<void> {
    this.setPhase('stopped');
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.pongTimer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000, 'edgecore stopping');
      setTimeout(() => { ws.terminate(); resolve(); }, 1000).unref();
    });
  }

  private setPhase(phase: LinkPhase): void {
    if (this.phase === phase || this.phase === 'stopped') return;
    this.phase = phase;
    if (phase === 'connected') this.downSince = null;
    else if (this.downSince === null) this.downSince = Date.now();
    this.emit('phase', phase);
  }

  private connect(): void {
    this.setPhase('connecting');
    const url = new URL(HUB_PATHS.connect, this.urls.current().replace(/^http/, 'ws'));
    const auth = this.opts.auth?.() ?? (this.opts.credential !== undefined ? { mode: 'bearer' as const, credential: this.opts.credential } : null);
    // Certificate mode: mutual TLS, the server verified against the cloud's CA bundle, no Authorization header.
    const ws = new WebSocket(url, {
      headers: { ...(auth?.mode === 'bearer' ? { authorization: `Bearer ${auth.credential}` } : {}), [NODE_HEADER]: this.opts.node },
      ...(auth?.mode === 'certificate' ? { ca: auth.ca, cert: auth.cert, key: auth.key } : {}),
      maxPayload: this.opts.maxPayload ?? 64 * 1024 * 1024,
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    this.welcomed = false;
    this.upstreamInFlight = null;
    ws.on('open', () => {
      this.lastHeard = Date.now();
      this.send({
        type: 'hello', protocolVersion: PROTOCOL_VERSION, node: this.opts.node,
        epoch: this.opts.state.epoch(), lastRevision: this.opts.state.lastRevision(), agent: this.agentInfo(),
        features: [LINK_FEATURES.routes],
      });
      this.startHeartbeat();
    });
    ws.on('message', (data) => this.onMessage(data.toString()));
    let refusal: string | null = null;
    ws.on('unexpected-response', (_req, res) => {
      this.refusedIdentity = res.statusCode === 401;
      refusal = res.statusCode === 401
        ? (auth?.mode === 'certificate'
          ? 'cloud refused the link: HTTP 401: this node\'s certificate is not accepted (expired, revoked, or the node joined again elsewhere); to join again, start edgecore with a new join token'
          : 'cloud refused the link: HTTP 401: this node\'s credential is not valid (revoked, or the node joined again elsewhere); to join again, remove node.credential from the data dir and start edgecore with a new join token')
        : `cloud refused the link: HTTP ${res.statusCode}`;
      this.lastError = refusal;
      // 503 + Retry-After: cloudcore is shedding load (admission control); wait as asked.
      this.retryAfterMs = res.statusCode === 503 ? parseRetryAfterMs(res.headers['retry-after']) : null;
      res.resume();
      // With this listener ws leaves the handshake to us: end it, so 'close' schedules the next
      // attempt (without this a refused link stayed 'connecting' and never tried again).
      ws.terminate();
    });
    // The refusal says more than the aborted request's own error.
    ws.on('error', (err) => { this.lastError = refusal ?? describeCloudError(err); });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      clearInterval(this.heartbeatTimer);
      clearTimeout(this.pongTimer);
      this.requests?.cancelAll();
      if (code !== 1000 && code !== 1006) this.lastError = `closed by cloud: ${code} ${reason.toString()}`;
      this.opts.log?.warn({ code, reason: reason.toString(), error: this.lastError, cloudUrl: this.urls.current() }, 'cloud link down');
      if (this.phase === 'stopped') return;
      this.setPhase('disconnected');
      this.scheduleReconnect();
    });
  }

  /**
   * After a failed connect or a dropped link: the next replica, after the back-off. One that shed
   * this edge (503 + Retry-After: admission control) is full, not down: the next is tried at once,
   * and only when every replica in a row shed it does the edge wait, as long as the longest asked.
   */
  private scheduleReconnect(): void {
    const shedAfterMs = this.retryAfterMs;
    this.retryAfterMs = null;
    const from = this.urls.current();
    const to = this.stayOnReplica ? from : this.urls.advance();
    this.stayOnReplica = false;
    if (shedAfterMs !== null) {
      this.shedInRow++;
      this.shedWaitMs = Math.max(this.shedWaitMs, shedAfterMs);
      if (this.shedInRow < this.urls.size) {
        this.opts.log?.info({ from, to }, 'cloud replica is shedding load; trying the next one at once');
        this.retryTimer = setTimeout(() => this.connect(), 0);
        return;
      }
    }
    const wait = this.shedInRow > 0 ? this.shedWaitMs : null;
    this.shedInRow = 0;
    this.shedWaitMs = 0;
    const delay = retryDelayMs(++this.failures, wait, this.opts.backoff ?? DEFAULT_BACKOFF);
    if (to !== from) this.opts.log?.info({ from, to, retryInMs: delay }, 'moving the cloud link to the next replica');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private startHeartbeat(): void {
    const every = this.opts.heartbeatMs ?? HEARTBEAT_INTERVAL_MS;
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      // Two silent periods: the TCP connection is half-open (e.g. NAT dropped it); start over.
      if (Date.now() - this.lastHeard > 2.5 * every) {
        this.lastError = 'no answer from cloud within 2.5 heartbeats';
        this.ws?.terminate();
        return;
      }
      const t = Date.now();
      const stats = this.opts.nodeStats?.();
      this.pingInFlight = { t, sentAt: performance.now() };
      this.send({ type: 'ping', t, ...(this.rttMs !== null ? { rttMs: this.rttMs } : {}), ...(stats ? { stats } : {}) });
      this.armPongDeadline(t);
    }, every);
  }

  /** Anything heard from the cloud after the ping at `sentAt` counts as its answer. */
  private armPongDeadline(sentAt: number): void {
    const timeoutMs = this.opts.pongTimeoutMs ?? DEFAULT_PONG_TIMEOUT_MS;
    clearTimeout(this.pongTimer);
    const ws = this.ws;
    this.pongTimer = setTimeout(() => {
      if (this.ws !== ws || this.lastHeard >= sentAt) return;
      this.lastError = `no answer to a heartbeat within ${timeoutMs / 1000} s`;
      ws?.terminate();
    }, timeoutMs);
  }

  private send(frame: EdgeFrame): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify(frame);
    this.stats.bytesOut += Buffer.byteLength(text);
    this.ws.send(text);
  }

  private onMessage(raw: string): void {
    this.lastHeard = Date.now();
    this.stats.bytesIn += Buffer.byteLength(raw);
    const parsed = parseFrame(CloudFrameSchema, raw);
    if (!parsed.ok) {
      this.opts.log?.warn({ error: parsed.error.message }, 'ignoring bad frame from cloud');
      return;
    }
    // A newer cloudcore's fields (docs/sync.md, Version skew): read without them, said once each.
    const fresh = this.ignoredFields.fresh(parsed.ignored);
    if (fresh.length > 0) {
      this.opts.log?.warn({ fields: fresh }, 'ignoring frame fields this edgecore does not know (sent by a newer cloudcore?); upgrade edgecore to use them');
    }
    this.handle(parsed.frame);
  }

  private handle(frame: CloudFrame): void {
    switch (frame.type) {
      case 'welcome':
        this.welcomed = true;
        this.cloudTakesRoutes = frame.features?.includes(LINK_FEATURES.routes) === true;
        this.refusedIdentity = false;
        this.failures = 0;
        this.shedInRow = 0;
        this.shedWaitMs = 0;
        this.lastError = null;
        this.stats.connects++;
        this.opts.state.ackUpTo(frame.upstreamSeq);
        this.setPhase('connected');
        this.opts.log?.info({ mode: frame.mode, cloudUrl: this.urls.current() }, 'cloud link up');
        this.flushUpstream();
        return;
      case 'sync': {
        let result: { changed: string[]; removed: string[]; devicesChanged?: boolean; routesChanged?: boolean };
        try {
          result = this.opts.state.applySync(frame);
        } catch (err) {
          // Not committed, so not acked: drop the link and let the cloud resend after reconnect.
          this.lastError = `could not commit desired state: ${(err as Error).message}`;
          this.opts.log?.warn({ revision: frame.revision }, this.lastError);
          this.ws?.close(4400, 'sync frame refused');
          return;
        }
        this.stats.syncFrames++;
        this.stats.changesReceived += frame.changes.length;
        if (frame.mode === 'snapshot') this.stats.snapshots++;
        this.send({ type: 'ack', revision: frame.revision });
        this.emit('desired', { ...result, mode: frame.mode });
        return;
      }
      case 'upstreamAck':
        this.opts.state.ackUpTo(frame.seq);
        if (this.upstreamInFlight !== null && frame.seq >= this.upstreamInFlight) this.upstreamInFlight = null;
        this.flushUpstream();
        return;
      case 'error':
        this.stats.errorsFromCloud++;
        this.lastError = `cloud: ${frame.message}`;
        this.opts.log?.warn({ code: frame.code, field: frame.field }, `cloud refused a frame: ${frame.message}`);
        return;
      case 'pong':
        if (this.pingInFlight?.t === frame.t) this.rttMs = Math.round((performance.now() - this.pingInFlight.sentAt) * 10) / 10;
        this.pingInFlight = undefined;
        return;
      case 'logsRequest':
      case 'execRequest':
      case 'streamCancel':
        return this.onOperatorRequest(frame);
      case 'agentUpgrade':
        this.emit('agentUpgrade', frame);
        return;
      case 'routedAck':
      case 'publishRequest':
        this.emit('routeFrame', frame);
        return;
    }
  }

  /** Sends a route frame if the link is up (welcomed); false when it is not and nothing was sent. */
  sendRouteFrame(frame: Extract<EdgeFrame, { type: 'routed' | 'routeStatus' | 'publishResult' }>): boolean {
    if (!this.welcomed || !this.cloudTakesRoutes || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.send(frame);
    return true;
  }

  /** The agent info the hello carries: the static part plus the latest upgrade attempt, if any. */
  private agentInfo(): z.infer<typeof AgentInfoSchema> {
    return this.upgradeStatus ? { ...this.opts.agent, upgrade: this.upgradeStatus } : this.opts.agent;
  }

  private upgradeStatus: AgentUpgradeStatus | undefined;

  /** Records the latest upgrade attempt: sent now when linked, and in every later hello. */
  reportUpgrade(status: AgentUpgradeStatus | undefined): void {
    this.upgradeStatus = status;
    if (this.welcomed) this.send({ type: 'agentStatus', agent: this.agentInfo() });
  }

  private onOperatorRequest(frame: Extract<CloudFrame, { type: 'logsRequest' | 'execRequest' | 'streamCancel' }>): void {
    if (!this.requests) {
      if (frame.type !== 'streamCancel') this.send(frame.type === 'logsRequest'
        ? { type: 'logsData', id: frame.id, lines: [], done: true, error: 'this edge does not serve logs' }
        : { type: 'execResult', id: frame.id, exitCode: null, stdout: '', stderr: '', timedOut: false, error: 'this edge does not serve exec' });
      return;
    }
    const fail = (err: Error) => this.opts.log?.warn({ err: err.message, request: frame.type }, 'operator request failed');
    if (frame.type === 'logsRequest') this.requests.onLogsRequest(frame).catch(fail);
    else if (frame.type === 'execRequest') this.requests.onExecRequest(frame).catch(fail);
    else this.requests.onCancel(frame.id);
  }

  private flushUpstream(): void {
    if (!this.welcomed || this.upstreamInFlight !== null) return;
    const entries = this.opts.state.pending(this.opts.batchSize ?? 200,
      (seq, error) => this.opts.log?.warn({ seq, error }, 'outbox entry cannot be read; dropped (counted in outbox.dropped)'));
    if (entries.length === 0) return;
    this.upstreamInFlight = entries[entries.length - 1]!.seq;
    this.stats.upstreamSent += entries.length;
    this.send({ type: 'upstream', entries });
  }
}
