import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, hostname, platform } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { EDGEFLEET_VERSION, type WorkloadState, type WorkloadStatus } from '../protocol/index.js';
import type { EdgeSettings } from './config.js';
import type { CloudLink } from './link/cloudLink.js';
import { JoinRefusedError, joinCloud } from './link/join.js';
import { backoffDelayMs } from './link/backoff.js';
import type { UnreadableRow } from './meta/desired.js';
import { META_KEYS, MetaStore } from './meta/metaStore.js';
import { ProcessRuntime } from './runtime/processRuntime.js';
import type { ContainerRuntime } from './runtime/container/containerRuntime.js';
import { materializeTemplate, removeWorkloadData } from './runtime/dataRefs.js';
import { transitionEvent } from './runtime/transitionEvent.js';
import { RuntimeRouter } from './runtime/runtimeRouter.js';
import { readStatusPasswordFile, StatusServer } from './local/statusServer.js';
import { hostStatus } from './local/hostStatus.js';
import { buildEdgeStatus, LinkTimes, LogTailCache, withRecentLogs } from './local/statusSnapshot.js';
import type { EdgeMetrics } from './observability/edgeMetrics.js';
import type { EdgeStatus } from '../protocol/edgeStatus.js';
import type { DeviceHub } from './devices/deviceHub.js';
import { MapperAccess, mapperDeviceList } from './devices/mapperAccess.js';
import { localUrl, withMapperAccess, type MapperEndpoints } from './devices/mapperWorkload.js';
import { DEFAULT_TELEMETRY_BATCH } from './devices/deviceHubOptions.js';
import { NodeStatsSampler } from './link/nodeStats.js';

/**
 * edgecore wiring: meta DB → runtime (from local state first, cloud or not) → link → status.
 * The node credential lives in its own file beside the database, so wiping the database
 * (lost disk, reset) keeps the node's identity and makes the cloud resend everything.
 */
export class EdgeAgent {
  private meta!: MetaStore;
  private runtime!: RuntimeRouter;
  private processRuntime!: ProcessRuntime;
  private containerRuntime: ContainerRuntime | undefined;
  private devices: DeviceHub | undefined;
  private mappers: MapperAccess | undefined;
  /** What mapper workloads are told about this node (withMapperAccess), once the broker listens. */
  private mapperLocal: Omit<MapperEndpoints, 'credentialFile'> | undefined;
  private link: CloudLink | undefined;
  private nodeStats: NodeStatsSampler | undefined;
  private status!: StatusServer;
  private readonly startedAt = Date.now();
  private readonly linkTimes = new LinkTimes();
  /** Counted here because only the agent sees every entry the device hub queues (for /metrics). */
  private readonly deviceCounters = { twinUpdates: 0, telemetryBatches: 0 };
  private metrics: Promise<EdgeMetrics> | undefined;
  private readonly logTails = new LogTailCache((name, tail) => this.runtime.readLogs(name, tail), 10_000);
  private reconciling: Promise<void> = Promise.resolve();
  /** A full resync was asked for this run because stored desired objects did not parse. */
  private resyncRequested = false;
  /** The kinds of desired object with unreadable rows at their last read (see repairUnreadable). */
  private readonly unreadableKinds = new Set<UnreadableRow['kind']>();
  private stopping = false;
  private joinTimer: NodeJS.Timeout | undefined;
  private readonly lastState = new Map<string, WorkloadState>();
  statusUrl = '';

  constructor(private readonly settings: EdgeSettings, private readonly log: Logger) {}

  async start(): Promise<void> {
    const { dataDir } = this.settings;
    // Read first: a bad password file must stop edgecore before it starts any workload.
    const passwordFile = this.settings.statusPasswordFile;
    const statusPassword = passwordFile ? readStatusPasswordFile(passwordFile) : undefined;
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.meta = MetaStore.open(join(dataDir, 'edge.db'));
    this.meta.setValue(META_KEYS.node, this.settings.node);
    const versionBefore = this.meta.noteAgentVersion(EDGEFLEET_VERSION);
    if (versionBefore) {
      this.log.info({ from: versionBefore, to: EDGEFLEET_VERSION }, 'edgecore version changed: the cloud will send the whole desired state again');
    }
    this.processRuntime = new ProcessRuntime({
      logDir: join(dataDir, 'logs'),
      records: this.meta.records,
      logMaxBytes: this.settings.logMaxBytes,
      logger: this.log,
    });
    if (this.settings.containerEngine) {
      const { ContainerRuntime } = await import('./runtime/container/containerRuntime.js');
      this.containerRuntime = new ContainerRuntime({
        socketPath: this.settings.containerEngine,
        nodeName: this.settings.node,
        dataVolumeDir: join(dataDir, 'volumes'),
        logger: this.log,
      });
    }
    this.runtime = new RuntimeRouter({ process: this.processRuntime, ...(this.containerRuntime ? { container: this.containerRuntime } : {}) });
    this.runtime.onStatus((name, status) => this.onWorkloadStatus(name, status));
    await this.processRuntime.recover();
    // Containers outlive edgecore: take over the running ones instead of recreating them.
    await this.containerRuntime?.adopt();
    // Autonomy: run what the local database says before even trying the cloud.
    await this.reconcile();
    // The local status page answers as soon as the workloads are up; the broker comes next.
    this.status = new StatusServer({
      snapshot: () => this.statusSnapshot({ logLines: 5 }),
      metrics: () => this.renderMetrics(),
      realm: `edgecore ${this.settings.node}`,
      ...(statusPassword !== undefined ? { password: statusPassword } : {}),
    });
    this.statusUrl = await this.status.listen(this.settings.statusHost, this.settings.statusPort);
    await this.startDevices();
    // Mapper workloads were left for the broker; the rest are already in line.
    await this.reconcile();
    this.log.info({ statusUrl: this.statusUrl, mqttUrl: this.mqttUrl, mqttTlsUrl: this.mqttTlsUrl, workloads: this.meta.desiredWorkloads().length, devices: this.meta.desiredDevices().length }, 'edgecore ready');
    await this.startLink(0);
  }

  /** Where configs and secrets of workloads are written (root-only). */
  private dataRoot(): string { return join(this.settings.dataDir, 'workload-data'); }

  private credentialPath(): string { return join(this.settings.dataDir, 'node.credential'); }

  private async startLink(attempt: number): Promise<void> {
    if (this.stopping) return;
    let credential = existsSync(this.credentialPath()) ? readFileSync(this.credentialPath(), 'utf8').trim() : '';
    if (!credential) {
      if (!this.settings.joinToken) {
        this.log.error({}, 'node has no credential and no join token: create one with `edgectl token create NODE` and pass --join-token');
        return;
      }
      try {
        credential = await joinCloud(this.settings.cloudUrl, this.settings.node, this.settings.joinToken);
        writeFileSync(this.credentialPath(), credential + '\n', { mode: 0o600 });
        this.log.info({}, 'joined the fleet');
      } catch (err) {
        if (err instanceof JoinRefusedError) {
          this.log.error({ err: err.message }, 'join refused; get a new token for this node');
          this.joinError = err.message;
          return;
        }
        this.joinError = (err as Error).message;
        const delay = backoffDelayMs(attempt + 1); // attempt 0 was the first try: this is failure attempt+1
        this.log.warn({ err: this.joinError, retryInMs: delay }, 'cannot reach cloud to join; retrying');
        this.joinTimer = setTimeout(() => void this.startLink(attempt + 1), delay);
        return;
      }
    }
    this.joinError = null;
    this.nodeStats = new NodeStatsSampler({ dataDir: this.settings.dataDir, intervalMs: this.settings.nodeStatsSeconds * 1000, log: this.log });
    await this.nodeStats.start();
    // Loaded only now (with ws): the cloud link is not on the cold-start path of the workloads.
    const { CloudLink } = await import('./link/cloudLink.js');
    this.link = new CloudLink({
      cloudUrl: this.settings.cloudUrl,
      node: this.settings.node,
      credential,
      state: this.meta,
      agent: { version: EDGEFLEET_VERSION, os: platform(), arch: arch(), hostname: hostname() },
      heartbeatMs: this.settings.heartbeatSeconds * 1000,
      pongTimeoutMs: this.settings.pongTimeoutSeconds * 1000,
      log: this.log,
      runtime: this.runtime,
      nodeStats: () => this.nodeStats?.take(),
    });
    this.link.on('phase', (phase) => this.linkTimes.onPhase(phase));
    this.link.on('desired', (result) => {
      this.log.debug({ mode: result.mode, changed: result.changed, removed: result.removed, devicesChanged: result.devicesChanged ?? false }, 'desired state committed');
      void this.reconcile();
      if (result.devicesChanged) void this.syncDevices();
    });
    this.link.start();
  }

  joinError: string | null = null;
  mqttUrl = '';
  mqttTlsUrl: string | null = null;

  /** The device broker and twin engine, fed from the local database (so it works offline too). */
  private async startDevices(): Promise<void> {
    // Loaded after the workloads are running: the broker is not on the cold-start path.
    const { DeviceHub } = await import('./devices/deviceHub.js');
    this.devices = new DeviceHub({
      // Twins live in edge.db next to the outbox: a batch of reports and its outbox entries are one commit.
      db: this.meta.database,
      host: this.settings.mqttHost,
      port: this.settings.mqttPort,
      allowAnonymous: this.settings.mqttAllowAnonymous,
      twinUpstreamIntervalMs: this.settings.twinUpstreamIntervalMs,
      telemetryBatch: { ...DEFAULT_TELEMETRY_BATCH, maxDelayMs: this.settings.telemetryBatchMs },
      ...(this.settings.mqttTlsPort !== undefined && this.settings.mqttTlsCert && this.settings.mqttTlsKey ? {
        tls: { port: this.settings.mqttTlsPort, cert: readFileSync(this.settings.mqttTlsCert, 'utf8'), key: readFileSync(this.settings.mqttTlsKey, 'utf8') },
      } : {}),
      logger: this.log,
      // Called inside the hub's transaction: the entries commit with the twins they describe.
      upstream: (entries) => {
        this.meta.enqueueMany(entries, { bodiesParsed: true });
        for (const entry of entries) {
          if (entry.kind === 'twinReported') this.deviceCounters.twinUpdates++;
          else this.deviceCounters.telemetryBatches++;
        }
      },
      onUpstreamCommit: (committed) => { if (committed) this.link?.notifyOutbox(); },
    });
    const { port, tlsPort } = await this.devices.start();
    this.mqttUrl = `mqtt://${this.settings.mqttHost}:${port}`;
    if (tlsPort !== undefined) this.mqttTlsUrl = `mqtts://${this.settings.mqttHost}:${tlsPort}`;
    this.mappers = new MapperAccess(join(this.settings.dataDir, 'mappers'), this.devices);
    this.mapperLocal = {
      node: this.settings.node,
      edgeUrl: localUrl('http', this.settings.statusHost, Number(new URL(this.statusUrl).port)),
      mqttUrl: localUrl('mqtt', this.settings.mqttHost, port),
    };
    this.status.addRoute((path, url, req) => {
      if (path !== '/mapper/v1/devices') return undefined;
      const protocol = url.searchParams.get('protocol') ?? '';
      if (!this.mappers?.authorized(protocol, req.headers.authorization)) {
        return { status: 401, body: { error: `mapper credential for protocol "${protocol}" missing or wrong (see <dataDir>/mappers/<protocol>.password)` } };
      }
      return { status: 200, body: mapperDeviceList(this.settings.node, this.meta.desiredDevices(), protocol) };
    });
    await this.syncDevices();
  }

  private async syncDevices(): Promise<void> {
    const { items: devices, unreadable } = this.meta.readDesiredDevices();
    this.repairUnreadable('Device', unreadable);
    // A device whose stored object cannot be read is not removed: its twin waits for the resync.
    this.devices?.setDevices(devices, new Set(unreadable.map((row) => row.name)));
    await this.mappers?.ensureFor(devices).catch((err: Error) => this.log.warn({ err: err.message }, 'could not set up mapper credentials'));
  }

  /** Brings the runtime in line with the desired set in the local database. Serialized. */
  reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(async () => {
      if (this.stopping) return;
      const { items: desired, unreadable } = this.meta.readDesiredWorkloads();
      this.repairUnreadable('Workload', unreadable);
      // A workload whose stored object cannot be read is still wanted: what runs of it keeps
      // running until the cloud's copy replaces the row.
      const wanted = new Set([...desired.map((w) => w.spec.app), ...unreadable.map((r) => r.name)]);
      for (const name of this.runtime.statuses().keys()) {
        if (!wanted.has(name)) {
          await this.runtime.remove(name);
          removeWorkloadData(this.dataRoot(), name);
          this.lastState.delete(name);
          this.log.info({ workload: name }, 'workload removed');
        }
      }
      // Workloads start in parallel: a cold start with many of them is bounded by the slowest, not the sum.
      await Promise.all(desired.map(async (w) => {
        const base = { name: w.spec.app, generation: w.spec.generation };
        let template;
        try {
          template = materializeTemplate(w, this.dataRoot());
          if (template.deviceMapper !== undefined) {
            // Mappers need the broker, which starts after the first reconcile; start() reconciles again then.
            if (!this.mappers || !this.mapperLocal) return;
            const credentialFile = await this.mappers.ensureProtocol(template.deviceMapper.protocol);
            template = withMapperAccess(template, { ...this.mapperLocal, credentialFile });
          }
        } catch (err) {
          await this.runtime.markFailed({ ...base, template: w.spec.template }, (err as Error).message);
          return;
        }
        await this.runtime.ensure({ ...base, template })
          .catch((err: Error) => this.log.error({ workload: w.spec.app, err: err.message }, 'could not start workload'));
      }));
      // Owned containers this node no longer wants, including ones no runtime entry tracks.
      await this.containerRuntime?.removeUndesired(wanted)
        .catch((err: Error) => this.log.warn({ err: err.message }, 'could not clean up undesired containers'));
    }).catch((err: unknown) => {
      // Never left rejected: later reconciles chain on this promise and must still run.
      this.log.error({ err: String(err) }, 'reconciling workloads failed; the next desired change tries again');
    });
    return this.reconciling;
  }

  /**
   * Stored desired objects this edgecore cannot read (after an upgrade, or a hand edit) are
   * replaced by the cloud's copies: the sync cursor is reset, once per run, and the link
   * reconnects to replay the desired state from the start. Workloads and devices are read at
   * different times (reconcile, device sync), so each reports its own kind.
   */
  private repairUnreadable(kind: UnreadableRow['kind'], rows: UnreadableRow[]): void {
    if (rows.length === 0) {
      this.unreadableKinds.delete(kind);
      if (this.unreadableKinds.size === 0) this.resyncRequested = false;
      return;
    }
    this.unreadableKinds.add(kind);
    if (this.resyncRequested) return;
    this.resyncRequested = true;
    this.log.error({ rows }, 'stored desired objects cannot be read; asking the cloud for the whole desired state again');
    this.meta.resetSyncCursor();
    this.link?.reconnect();
  }

  private onWorkloadStatus(name: string, reported: WorkloadStatus): void {
    const desired = this.stopping ? undefined : this.meta.desiredWorkload(name);
    if (!desired) return;
    // Tells the cloud which version of the Workload this status is about (and not to echo it back).
    const status: WorkloadStatus = { ...reported, observedGeneration: desired.metadata.generation ?? 0 };
    this.meta.enqueue('workloadStatus', name, { app: name, status });
    const previous = this.lastState.get(name);
    if (previous !== status.state) {
      this.lastState.set(name, status.state);
      const event = transitionEvent(name, status);
      if (event) this.meta.enqueue('event', `${name}:${status.state}`, event);
      this.log.info({ workload: name, state: status.state, pid: status.pid, exitCode: status.exitCode }, 'workload state');
    }
    this.link?.notifyOutbox();
  }

  /** The `/status` answer (protocol/edgeStatus.ts); `logLines: 0` skips reading the workloads' logs. */
  async statusSnapshot(opts: { logLines: number } = { logLines: 0 }): Promise<EdgeStatus> {
    const statuses = this.runtime.statuses();
    const link = this.link;
    const status = buildEdgeStatus({
      node: this.settings.node,
      version: EDGEFLEET_VERSION,
      cloudUrl: this.settings.cloudUrl,
      startedAt: this.startedAt,
      now: Date.now(),
      pid: process.pid,
      link: link ? { phase: link.phase, downSince: link.downSince, lastError: link.lastError, stats: link.stats } : undefined,
      linkTimes: this.linkTimes,
      joinError: this.joinError,
      sync: { epoch: this.meta.epoch(), lastRevision: this.meta.lastRevision() },
      outbox: this.meta.outboxStats(),
      mqtt: this.devices ? { url: this.mqttUrl, ...this.devices.statusSnapshot() } : null,
      // Template env is left out on purpose: it may carry secrets.
      workloads: this.meta.desiredWorkloads().map((w) => ({
        name: w.spec.app,
        generation: w.spec.generation,
        runtime: w.spec.template.runtime,
        status: statuses.get(w.spec.app) ?? null,
      })),
      host: hostStatus(this.settings.dataDir),
    });
    if (opts.logLines === 0) return status;
    this.logTails.retain(new Set(status.workloads.map((w) => w.name)));
    return withRecentLogs(status, (name, tail) => this.logTails.tail(name, tail), opts.logLines);
  }

  /** `/metrics`: prom-client is loaded on the first scrape only (see edgeMetrics.ts). */
  private async renderMetrics(): Promise<string> {
    this.metrics ??= import('./observability/edgeMetrics.js').then(({ EdgeMetrics }) =>
      EdgeMetrics.create(async () => ({ status: await this.statusSnapshot(), counters: { ...this.deviceCounters } })));
    return (await this.metrics).render();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.joinTimer);
    this.nodeStats?.stop();
    await this.link?.stop();
    await this.reconciling;
    await this.runtime.shutdown({ stopWorkloads: !this.settings.keepWorkloadsOnExit });
    await this.status?.close();
    await this.devices?.close();
    this.meta.close();
  }
}
