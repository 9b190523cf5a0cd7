import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import {
  EdgeFrameSchema, IgnoredFieldNotes, LINK_FEATURES, PROTOCOL_VERSION, parseFrame,
  type AgentUpgradeFrame, type CloudFrame, type NodeRoute, type EdgeFrame, type ErrorFrame, type HelloFrame, type UpstreamEntry,
} from '../../protocol/index.js';
import { GoneError, UnreadableError, type Store, type Watch } from '../store/store.js';
import type { TelemetryStore } from '../telemetry/telemetryStore.js';
import { updateNodeStatus } from '../store/readModifyWrite.js';
import type { AgentUpgradeChannel } from './agentUpgrades.js';
import { OperatorRequests } from './operatorRequests.js';
import { ResyncSweepTimer } from './resyncSweep.js';
import { decideResume, isEchoOfEdgeStatus, isSynced, PendingChanges } from './syncCursor.js';
import { applyUpstreamEntry } from './upstream.js';
import { nodeRoutesFor, takesRoutes, type RouteFrameSink } from './routeTraffic.js';

export interface HubCounters {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  refused: number;
  snapshots: number;
  /** Resync sweeps sent (snapshots of a live link's whole desired set, repairing a lost watch event). */
  sweeps: number;
  /** Frames by `type` (`invalid` for ones that do not parse), for /metrics. */
  framesInByType: Record<string, number>;
  framesOutByType: Record<string, number>;
}

function countFrame(byType: Record<string, number>, type: string): void {
  byType[type] = (byType[type] ?? 0) + 1;
}

export interface SessionDeps {
  store: Store;
  telemetry?: TelemetryStore;
  log: Logger;
  counters: HubCounters;
  /** Upstream seq applied per node and epoch; outlives sessions so a reconnect skips resends. */
  upstreamCursors: Map<string, { epoch: string; seq: number }>;
  /** Called once when the session ends, whatever the reason. */
  onClose: (session: NodeSession) => void;
  /** Every heartbeat (it may carry the edge's round trip and resource sample). */
  onPing?: (node: string, ping: Extract<EdgeFrame, { type: 'ping' }>) => void;
  /** Agent upgrades: offers the node its desired agent and records what it reports. */
  agentUpgrades?: AgentUpgradeChannel;
  /** Once, when the link has settled: its snapshot acked, or its resume under way (admission control). */
  onSettled?: () => void;
  /** Per-node event rate limit; without it every event is stored. */
  eventBudget?: { admit(node: string): boolean };
  /**
   * Every this many ms (with jitter) the node's whole desired set is sent again as a snapshot,
   * repairing anything a lost watch event left wrong at the edge (etcd 3.4 before 3.4.36 can
   * drop a delete). Off without it: SQLite's in-process watch loses nothing.
   */
  resyncSweepMs?: number;
  /**
   * With several replicas: settles once this replica's claim on the node is recorded. The hello
   * writes Ready only after it, so a replica that saw the node's old link end and writes Offline
   * (guarded on "nobody claimed it") can never land after this Ready.
   */
  claimed?: Promise<unknown>;
  /** Routed messages, route counters and publish answers from edges (hub/routeTraffic.ts). */
  routes?: RouteFrameSink;
}


/** How often upstream held on an unreadable object is tried again. */
export const UPSTREAM_HOLD_RETRY_MS = 5000;

/**
 * One connected edge node. Owns the downstream cursor for that node (what is in flight,
 * what is pending) and applies the node's upstream outbox. At most one sync frame is in
 * flight: while the edge has not acked it, further changes coalesce per object.
 */
export class NodeSession {
  private hello: HelloFrame | undefined;
  private watch: Watch | undefined;
  private readonly pending = new PendingChanges();
  private readonly ignoredFields = new IgnoredFieldNotes();
  /** True while upstream waits on an entry about an unreadable object (see holdUpstream). */
  private upstreamHeld = false;
  private inFlight: number | null = null;
  private flushScheduled = false;
  private upstreamChain: Promise<void> = Promise.resolve();
  private lastUpstreamSeq = 0;
  private closed = false;
  /** Watch events at or below this revision are in a sweep's snapshot already (sent newer or equal). */
  private sweptThrough = 0;
  private readonly sweeps: ResyncSweepTimer;
  lastSeen = Date.now();
  ackedRevision = 0;
  readonly connectedAt = Date.now();
  /** Operator logs/exec requests riding this link. */
  readonly requests: OperatorRequests;

  constructor(readonly node: string, private readonly ws: WebSocket, private readonly deps: SessionDeps) {
    this.requests = new OperatorRequests(node, (frame) => this.send(frame));
    this.sweeps = new ResyncSweepTimer(deps.resyncSweepMs, () => this.sweep(),
      (err) => deps.log.warn({ node, err: err.message }, 'resync sweep failed; tried again later'));
    ws.on('message', (data, isBinary) => this.onMessage(data.toString(), isBinary));
    ws.on('close', (code, reason) => this.onSocketClose(code, reason.toString()));
    ws.on('error', (err) => deps.log.warn({ node, err: err.message }, 'edge socket error'));
  }

  get epoch(): string | undefined { return this.hello?.epoch; }

  /** What the node has not acked yet: a sync frame in flight, and objects queued behind it (for /metrics). */
  get syncBacklog(): { inFlight: boolean; pendingObjects: number } {
    return { inFlight: this.inFlight !== null, pendingObjects: this.pending.size };
  }

  /** Ends the session from the cloud side (replaced by a newer connection, node deleted, heartbeat lost). */
  terminate(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code, reason);
    else this.ws.terminate();
    this.finish();
  }

  /**
   * Ends the link at once, discarding every frame still queued on it: the node's link is now
   * another replica's, and nothing this one had queued may reach the node late (KubeEdge's HA
   * delivered such stale messages to a node that came back to its old cloudcore).
   */
  drop(reason: string): void {
    this.deps.log.info({ node: this.node, reason }, 'dropping edge link');
    this.ws.terminate();
    this.finish();
  }

  /** The agent info of the hello (updated by agentStatus frames); undefined before the hello. */
  agent(): HelloFrame['agent'] | undefined {
    return this.hello?.agent;
  }

  sendAgentUpgrade(frame: AgentUpgradeFrame): void {
    this.send(frame);
  }

  private send(frame: CloudFrame): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    const text = JSON.stringify(frame);
    this.deps.counters.framesOut++;
    countFrame(this.deps.counters.framesOutByType, frame.type);
    this.deps.counters.bytesOut += Buffer.byteLength(text);
    this.ws.send(text);
  }

  private refuse(error: ErrorFrame, detail: Record<string, unknown> = {}): void {
    this.deps.counters.refused++;
    this.deps.log.warn({ node: this.node, code: error.code, field: error.field, ...detail }, `refused frame: ${error.message}`);
    this.send(error);
  }

  private onMessage(raw: string, isBinary: boolean): void {
    this.deps.counters.framesIn++;
    this.deps.counters.bytesIn += Buffer.byteLength(raw);
    this.lastSeen = Date.now();
    if (isBinary) {
      countFrame(this.deps.counters.framesInByType, 'invalid');
      return this.refuse({ type: 'error', code: 'bad_frame', message: 'binary frames are not accepted; send JSON text' });
    }
    const parsed = parseFrame(EdgeFrameSchema, raw);
    if (!parsed.ok) {
      countFrame(this.deps.counters.framesInByType, 'invalid');
      return this.refuse(parsed.error);
    }
    const unknownFields = this.ignoredFields.fresh(parsed.ignored);
    if (unknownFields.length > 0) {
      this.deps.log.warn({ node: this.node, fields: unknownFields, agent: this.hello?.agent.version }, 'ignoring frame fields this cloudcore does not know (sent by a newer edgecore?)');
    }
    const frame = parsed.frame;
    countFrame(this.deps.counters.framesInByType, frame.type);
    if (frame.type === 'hello') return void this.onHello(frame).catch((err: Error) => this.fail(err));
    if ('node' in frame && frame.node !== undefined && frame.node !== this.node) {
      return this.refuse(
        { type: 'error', code: 'forbidden', message: `frame claims node "${frame.node}" but this link belongs to "${this.node}"`, field: 'node' },
        { claimed: frame.node },
      );
    }
    if (frame.type === 'ping') {
      this.deps.onPing?.(this.node, frame);
      return this.send({ type: 'pong', t: frame.t });
    }
    if (!this.hello) return this.refuse({ type: 'error', code: 'protocol', message: `"${frame.type}" before "hello": send hello first` });
    this.onSyncFrame(frame);
  }

  private onSyncFrame(frame: Exclude<EdgeFrame, { type: 'hello' | 'ping' }>): void {
    if (frame.type === 'logsData') return this.requests.onLogsData(frame);
    if (frame.type === 'execResult') return this.requests.onExecResult(frame);
    if (frame.type === 'agentStatus') {
      this.hello = { ...this.hello!, agent: frame.agent };
      return void this.deps.agentUpgrades?.record(this.node, frame.agent).catch((err: Error) => this.fail(err));
    }
    if (frame.type === 'ack') {
      if (this.inFlight === null || frame.revision !== this.inFlight) {
        return this.refuse({ type: 'error', code: 'protocol', message: `ack for revision ${frame.revision}, but ${this.inFlight ?? 'nothing'} is in flight`, field: 'revision' });
      }
      this.inFlight = null;
      this.ackedRevision = frame.revision;
      this.deps.onSettled?.();
      this.scheduleFlush();
      return;
    }
    if (frame.type !== 'upstream') return this.onRouteFrame(frame);
    const entries = frame.entries;
    this.upstreamChain = this.upstreamChain
      .then(() => this.applyUpstream(entries))
      .catch((err: Error) => this.fail(err));
  }

  private takesRoutes(): boolean {
    return takesRoutes(this.hello);
  }

  private routesOfNode(): Promise<{ items: NodeRoute[]; revision: number }> {
    return nodeRoutesFor(this.deps.store, this.node, this.takesRoutes());
  }

  /** A route request to the edge (an operator's publish), sent only once the edge said hello. */
  sendRouteRequest(frame: Extract<CloudFrame, { type: 'publishRequest' }>): boolean {
    if (this.closed || !this.takesRoutes()) return false;
    this.send(frame);
    return true;
  }

  /** Route traffic (routes.ts in protocol/): handled by the hub's RouteTraffic, apart from the outbox. */
  private onRouteFrame(frame: Extract<EdgeFrame, { type: 'routed' | 'routeStatus' | 'publishResult' }>): void {
    if (!this.deps.routes) return this.refuse({ type: 'error', code: 'protocol', message: `"${frame.type}" is not served by this cloudcore` });
    this.deps.routes.onFrame(this.node, frame, (reply) => this.send(reply));
  }

  private async applyUpstream(entries: UpstreamEntry[]): Promise<void> {
    const epoch = this.hello!.epoch;
    for (const entry of entries) {
      if (entry.seq <= this.lastUpstreamSeq) continue; // already applied: a resend after a lost ack
      // Over the node's event budget: dropped (counted, warned) but acked like an applied entry.
      const overBudget = entry.kind === 'event' && this.deps.eventBudget?.admit(this.node) === false;
      try {
        const foreign = overBudget ? undefined : await applyUpstreamEntry(this.deps, this.node, epoch, entry);
        if (foreign) {
          this.refuse({ type: 'error', code: 'forbidden', field: 'entries',
            message: `upstream entry ${entry.seq} (${entry.kind}) is about device "${foreign.device}", which belongs to ${foreign.owner ? `node "${foreign.owner}"` : 'no node'}, not "${this.node}"; dropped` },
          { device: foreign.device, owner: foreign.owner, seq: entry.seq });
        }
      } catch (err) {
        if (!(err instanceof UnreadableError)) throw err;
        return this.holdUpstream(entries, entry, err);
      }
      this.lastUpstreamSeq = entry.seq;
      this.deps.upstreamCursors.set(this.node, { epoch, seq: entry.seq });
    }
    if (this.upstreamHeld) this.deps.log.info({ node: this.node, seq: this.lastUpstreamSeq }, 'upstream flowing again');
    this.upstreamHeld = false;
    this.send({ type: 'upstreamAck', seq: this.lastUpstreamSeq });
  }

  /**
   * An entry about an object the store cannot read (a damaged Device row) is neither dropped nor
   * allowed to end the link: what came before it is acked, it and the rest wait (the edge sends
   * nothing newer until they are acked, which keeps their order) and are tried again every
   * UPSTREAM_HOLD_RETRY_MS, until an operator removed the object. Desired state keeps flowing.
   */
  private holdUpstream(entries: UpstreamEntry[], stuck: UpstreamEntry, err: UnreadableError): void {
    if (!this.upstreamHeld) {
      this.upstreamHeld = true;
      this.deps.log.error({ node: this.node, seq: stuck.seq, kind: stuck.kind, err: err.message },
        'upstream held: an entry touches an object the store cannot read; retrying until it is removed (edgectl get unreadable)');
    }
    this.send({ type: 'upstreamAck', seq: this.lastUpstreamSeq });
    const retry = setTimeout(() => {
      if (this.closed) return;
      this.upstreamChain = this.upstreamChain.then(() => this.applyUpstream(entries)).catch((e: Error) => this.fail(e));
    }, UPSTREAM_HOLD_RETRY_MS);
    retry.unref();
  }

  private async onHello(hello: HelloFrame): Promise<void> {
    if (this.hello) return this.refuse({ type: 'error', code: 'protocol', message: 'hello was already received on this link' });
    if (hello.node !== this.node) {
      this.refuse({ type: 'error', code: 'forbidden', message: `hello claims node "${hello.node}" but the credential belongs to "${this.node}"`, field: 'node' }, { claimed: hello.node });
      return this.terminate(4003, 'node mismatch');
    }
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      this.refuse({ type: 'error', code: 'protocol', message: `protocol version ${hello.protocolVersion} is not supported (cloud speaks ${PROTOCOL_VERSION})`, field: 'protocolVersion' });
      return this.terminate(4002, 'protocol version');
    }
    this.hello = hello;
    const { store } = this.deps;
    const nodeObj = await store.get('Node', this.node);
    const decision = decideResume({
      knownEpoch: nodeObj?.status.epoch ?? null,
      helloEpoch: hello.epoch,
      helloRevision: hello.lastRevision,
      compactedRevision: await store.compactedRevision(),
      currentRevision: await store.revision(),
    });
    // Upstream seqs restart with a new edge database; the old cursor would skip new entries.
    const cursor = this.deps.upstreamCursors.get(this.node);
    this.lastUpstreamSeq = cursor && cursor.epoch === hello.epoch ? cursor.seq : 0;
    this.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, mode: decision.mode, upstreamSeq: this.lastUpstreamSeq,
      ...(this.deps.routes ? { features: [LINK_FEATURES.routes] } : {}) });
    await this.deps.claimed;
    if (this.closed) return;
    const nowIso = new Date().toISOString();
    await updateNodeStatus(store, this.node, (n) => ({
      ...n.status,
      phase: 'Ready',
      since: n.status.phase === 'Ready' ? n.status.since : nowIso,
      lastSeen: nowIso,
      epoch: hello.epoch,
      agent: hello.agent,
    }));
    if (this.closed) return;
    await this.deps.agentUpgrades?.helloRecorded(this.node, nodeObj?.status.agent?.upgrade, hello.agent);
    this.deps.agentUpgrades?.offer(this, nodeObj?.spec.agent);
    if (decision.mode === 'snapshot') {
      this.deps.counters.snapshots++;
      this.deps.log.info({ node: this.node, reason: decision.reason }, 'sending full snapshot');
      // One store, one revision: both lists read the same state (no await between writes here).
      const workloads = await store.list('Workload', { node: this.node });
      const devices = await store.list('Device', { node: this.node });
      const routes = await this.routesOfNode();
      if (this.closed) return;
      const revision = Math.min(workloads.revision, devices.revision, routes.revision);
      this.inFlight = revision;
      this.pending.advance(revision);
      const changes = [...workloads.items, ...devices.items, ...routes.items].map((object) => ({ op: 'put' as const, object }));
      this.send({ type: 'sync', mode: 'snapshot', revision, changes });
      await this.startWatch(revision);
    } else {
      this.deps.log.info({ node: this.node, fromRevision: decision.fromRevision }, 'resuming edge');
      this.pending.advance(decision.fromRevision);
      this.ackedRevision = decision.fromRevision;
      try {
        await this.startWatch(decision.fromRevision);
        this.deps.onSettled?.();
      } catch (err) {
        if (!(err instanceof GoneError)) throw err;
        // Compacted between the decision and the watch, or compacted through an unreadable log
        // entry by this very watch: fall back to a snapshot on reconnect.
        this.deps.log.warn({ node: this.node, err: err.message }, 'cannot resume the edge; it reconnects for a snapshot');
        return this.terminate(4010, 'revision compacted, reconnect for a snapshot');
      }
    }
  }

  private async startWatch(fromRevision: number): Promise<void> {
    this.watch = await this.deps.store.watch({ node: this.node, fromRevision }, (event) => {
      if (!isSynced(event.object) || isEchoOfEdgeStatus(event) || event.revision <= this.sweptThrough) return;
      // An edge older than routes would refuse the whole sync frame for a NodeRoute in it.
      if (event.object.kind === 'NodeRoute' && !this.takesRoutes()) return;
      this.pending.add(event);
      this.scheduleFlush();
    }, (err) => {
      // The store lost this watch's history (a distributed store compacted past it, or lost its
      // engine): the edge reconnects and resumes from what it acked, or gets a snapshot.
      this.deps.log.warn({ node: this.node, err: err.message }, 'edge watch ended; the edge reconnects');
      this.terminate(4010, 'store watch ended, reconnect');
    });
    if (this.closed) this.watch.close();
    else this.sweeps.start();
  }

  /**
   * Sends the node's whole desired set, as it is in the store now, as a snapshot: the edge then
   * holds exactly that, whatever a lost watch event left behind. Only between frames (nothing in
   * flight or queued), so the snapshot's revision is not behind what the edge already has; watch
   * events it already covers are skipped, or a late one would briefly take an object back.
   */
  private async sweep(): Promise<boolean> {
    const busy = () => this.closed || this.inFlight !== null || this.pending.size > 0;
    if (busy()) return false;
    const { store } = this.deps;
    const workloads = await store.list('Workload', { node: this.node });
    const devices = await store.list('Device', { node: this.node });
    const routes = await this.routesOfNode();
    if (busy()) return false;
    const revision = Math.max(Math.min(workloads.revision, devices.revision, routes.revision), this.pending.revision);
    this.sweptThrough = revision;
    this.pending.advance(revision);
    this.inFlight = revision;
    this.deps.counters.sweeps++;
    const changes = [...workloads.items, ...devices.items, ...routes.items].map((object) => ({ op: 'put' as const, object }));
    this.send({ type: 'sync', mode: 'snapshot', revision, changes });
    return true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Let a burst of store writes (one app update touching many objects) land in one frame.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed || this.inFlight !== null || this.pending.size === 0) return;
    const { changes, revision } = this.pending.take();
    this.inFlight = revision;
    this.send({ type: 'sync', mode: 'delta', revision, changes });
  }

  private fail(err: Error): void {
    this.deps.log.error({ node: this.node, err: err.message }, 'edge session failed');
    this.send({ type: 'error', code: 'internal', message: 'internal error; reconnect' });
    this.terminate(1011, 'internal error');
  }

  private onSocketClose(code: number, reason: string): void {
    this.deps.log.info({ node: this.node, code, reason }, 'edge disconnected');
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.sweeps.stop();
    this.watch?.close();
    this.requests.closeAll(`node "${this.node}" disconnected`);
    this.deps.onClose(this);
  }
}
