import { join } from 'node:path';
import type { Logger } from 'pino';
import { EDGEFLEET_VERSION } from '../protocol/index.js';
import type { EdgeSettings } from './config.js';
import { prepareEdgeDataDir } from './dataDir.js';
import { DeviceService } from './devices/deviceService.js';
import { RouteService } from './devices/routes/routeService.js';
import { CertificateRenewal } from './identity/certificateRenewal.js';
import { NodeIdentity } from './identity/nodeIdentity.js';
import { CloudConnection } from './link/cloudConnection.js';
import { LocalApi } from './local/localApi.js';
import { readStatusPasswordFile } from './local/statusServer.js';
import { MetaStore, META_KEYS } from './meta/metaStore.js';
import { UnreadableRepair } from './meta/unreadableRepair.js';
import { PartSet } from './part.js';
import { AgentUpgrader } from './upgrade/upgrader.js';
import { WorkloadManager } from './runtime/workloadManager.js';

export interface AgentHooks {
  /** Stop edgecore and exit with `code` (an upgrade: 75 restart into the new version, else the loader rolls back). */
  exit?: (code: number) => void;
}

/**
 * edgecore: its parts, in the order they start (and the reverse order they stop):
 *
 *   meta        edge.db: desired state, runtime records, twins, the outbox (edgecore/meta)
 *   workloads   runtimes, recovery, the reconcile loop: local desired state runs first (runtime/)
 *   local-api   status page, /status, /metrics, the mappers' device list (local/)
 *   identity    the node's certificate (or bearer credential) read from its files (identity/)
 *   devices     MQTT broker (device certificates checked against the identity's CA bundle), twins,
 *               telemetry, mapper credentials; then mapper workloads (devices/)
 *   routes      chosen broker traffic queued (routes.db) and forwarded to the cloud or an MQTT broker (devices/routes/)
 *   upgrade     over-the-air agent upgrades: download, verify, switch, exit 75; after a switch, the health
 *               check and the commit, or the report of the loader's rollback (upgrade/)
 *   link        the cloud link (after a join with the token, when one is due) and the node's resource samples (link/)
 *   renewal     renews the identity at 2/3 of its life, then the link reconnects once (identity/)
 *
 * Autonomy is the order: workloads run from the local database before the cloud is tried.
 */
export class EdgeAgent {
  private readonly parts: PartSet;
  statusUrl = '';

  constructor(private readonly settings: EdgeSettings, private readonly log: Logger, private readonly hooks: AgentHooks = {}) {
    this.parts = new PartSet(log);
  }

  async start(): Promise<void> {
    const { settings, log, parts } = this;
    const startedAt = Date.now();
    // Read first: a bad password file must stop edgecore before it starts any workload.
    const statusPassword = settings.statusPasswordFile ? readStatusPasswordFile(settings.statusPasswordFile) : undefined;
    prepareEdgeDataDir(settings.dataDir, { workloadPassage: process.getuid?.() === 0 }, log);

    const meta = MetaStore.open(join(settings.dataDir, 'edge.db'));
    await parts.start(meta);
    meta.setValue(META_KEYS.node, settings.node);
    const versionBefore = meta.noteAgentVersion(EDGEFLEET_VERSION);
    if (versionBefore) log.info({ from: versionBefore, to: EDGEFLEET_VERSION }, 'edgecore version changed: the cloud will send the whole desired state again');

    // The link exists only later; the repair and the outbox reach it through `link`.
    let link: CloudConnection | undefined;
    let upgrader: AgentUpgrader | undefined;
    const repair = new UnreadableRepair({ resetSyncCursor: () => meta.resetSyncCursor(), reconnect: () => link?.reconnect(), log });
    const workloads = new WorkloadManager({
      dataDir: settings.dataDir, node: settings.node, logMaxBytes: settings.logMaxBytes,
      containerEngine: settings.containerEngine, keepWorkloadsOnExit: settings.keepWorkloadsOnExit, workloadUser: settings.workloadUser,
      allowHostPaths: settings.allowHostPaths, allowHostNetwork: settings.allowHostNetwork,
      ledger: meta, log,
      onUnreadable: (rows) => repair.report('Workload', rows),
      onOutbox: () => link?.notifyOutbox(),
    });
    await parts.start(workloads);

    const identity = new NodeIdentity({
      dataDir: settings.dataDir, node: settings.node, cloudUrls: settings.cloudUrls, joinToken: settings.joinToken,
      allowUnpinnedToken: settings.allowUnpinnedToken, log,
    });
    // Renewals go first to the replica the link is on (it answers now), then to the others.
    const replicasFromCurrent = (): readonly string[] => link?.link?.urls.fromCurrent() ?? settings.cloudUrls;
    const renewal = new CertificateRenewal({ identity, cloudUrls: replicasFromCurrent, node: settings.node, log, onRenewed: () => link?.reconnect() });
    const devices: DeviceService = new DeviceService({
      settings, meta, log,
      localApiPort: (): number => localApi.port(),
      onUpstreamCommit: (committed) => { if (committed) link?.notifyOutbox(); },
      onUnreadable: (kind, rows) => repair.report(kind, rows),
      // Device certificates are checked against the cloud CA bundle the node's identity carries;
      // a renewal may bring a new bundle (a CA rotation), which the broker's listener takes at once.
      deviceCa: () => identity.caBundle() ?? undefined,
    });
    identity.on('changed', () => devices.reloadDeviceTrust());
    // Started after the broker (below); made here so the status page can ask it from the start.
    const routes = new RouteService({
      node: settings.node, dataDir: settings.dataDir, log,
      bus: () => devices.routeBus(),
      desired: () => meta.desiredRoutes(),
      appGrants: () => devices.statusSnapshot()?.appGrants ?? [],
      uplink: { send: (frame) => link?.link?.sendRouteFrame(frame) ?? false, up: () => link?.link?.phase === 'connected' && link.link.cloudTakesRoutes },
    });
    const localApi: LocalApi = new LocalApi({
      host: settings.statusHost, port: settings.statusPort, startedAt,
      ...(statusPassword !== undefined ? { password: statusPassword } : {}),
      sources: {
        node: settings.node, cloudUrl: settings.cloudUrl, cloudUrls: settings.cloudUrls, dataDir: settings.dataDir,
        link: () => link?.link,
        joinError: () => identity.joinError,
        identity: () => renewal.view(),
        sync: () => ({ epoch: meta.epoch(), lastRevision: meta.lastRevision() }),
        outbox: () => meta.outboxStats(),
        mqtt: () => devices.statusSnapshot(),
        // Template env is left out on purpose: it may carry secrets.
        workloads: () => {
          const statuses = workloads.runtime.statuses();
          return meta.desiredWorkloads().map((w) => ({
            name: w.spec.app, generation: w.spec.generation, runtime: w.spec.template.runtime, status: statuses.get(w.spec.app) ?? null,
          }));
        },
        readLogs: (name, tail) => workloads.runtime.readLogs(name, tail),
        counters: () => devices.counters,
        routes: () => routes.counters(),
        upgrade: () => {
          const view = upgrader?.view();
          return view ? { previousVersion: view.previousVersion, lastAttempt: view.lastAttempt } : undefined;
        },
      },
    });
    // The mappers' device list answers once the broker is up (until then: 404, as any unknown path).
    localApi.addRoute(devices.mapperRoute);
    // The local status page answers as soon as the workloads are up; the broker comes next.
    await parts.start(localApi);
    this.statusUrl = localApi.url;

    // The identity's files are read before the broker starts: its TLS listener trusts their CA bundle.
    await parts.start(identity);
    await parts.start(devices);
    await parts.start(routes);
    // Mapper workloads were left for the broker; the rest are already in line.
    workloads.useAppTemplates(devices.appTemplates);
    await workloads.useMapperTemplates(devices.mapperTemplates);
    upgrader = new AgentUpgrader({
      dataDir: settings.dataDir, cloudUrl: () => replicasFromCurrent()[0]!, running: EDGEFLEET_VERSION, healthSeconds: settings.upgradeHealthSeconds,
      env: process.env, ca: () => identity.caBundle() ?? undefined, log,
      report: (status) => link?.link?.reportUpgrade(status),
      linkUp: () => link?.link?.phase === 'connected',
      brokerUrl: () => devices.mqttUrl,
      workloads: () => {
        const statuses = workloads.runtime.statuses();
        return meta.desiredWorkloads().map((w) => {
          const s = statuses.get(w.spec.app);
          return { name: w.spec.app, runtime: w.spec.template.runtime, state: s?.state ?? 'Unknown', pid: s?.pid ?? null };
        });
      },
      exit: (code) => {
        // Whatever keepWorkloadsOnExit says: the next agent (new, or old after a rollback) adopts them.
        workloads.leaveWorkloadsRunning();
        if (this.hooks.exit) this.hooks.exit(code);
        else log.error({ code }, 'edgecore cannot exit for the upgrade here (no exit hook)');
      },
    });
    await parts.start(upgrader);
    log.info({ statusUrl: localApi.url, mqttUrl: devices.mqttUrl, mqttTlsUrl: devices.mqttTlsUrl, workloads: meta.desiredWorkloads().length, devices: meta.desiredDevices().length }, 'edgecore ready');

    link = new CloudConnection({
      cloudUrls: settings.cloudUrls, cloudUrlOrder: settings.cloudUrlOrder, node: settings.node, dataDir: settings.dataDir,
      heartbeatSeconds: settings.heartbeatSeconds, pongTimeoutSeconds: settings.pongTimeoutSeconds, nodeStatsSeconds: settings.nodeStatsSeconds,
      log, state: meta, runtime: workloads.runtime,
      withIdentity: (use) => identity.withIdentity(use),
      auth: () => identity.linkAuth(),
      onPhase: (phase) => { localApi.linkTimes.onPhase(phase); routes.onLinkPhase(phase === 'connected'); },
      onRouteFrame: (frame) => routes.onCloudFrame(frame),
      // An edge back from a long time offline renews its expired certificate on the failed connect;
      // a refused identity is probed once with a renewal, which tells revoked (needs a token) from the rest.
      onConnectFailed: (refusedIdentity) => renewal.onLinkDown(refusedIdentity),
      onAgentUpgrade: (frame) => upgrader?.onFrame(frame),
      upgradeStatus: () => upgrader?.lastStatus(),
      onDesired: (result) => {
        log.debug({ mode: result.mode, changed: result.changed, removed: result.removed, devicesChanged: result.devicesChanged ?? false }, 'desired state committed');
        void workloads.reconcile();
        if (result.devicesChanged) void devices.syncDevices();
        if (result.routesChanged) void routes.apply();
      },
    });
    await parts.start(link);
    await parts.start(renewal);
  }

  async stop(): Promise<void> {
    await this.parts.stopAll();
  }
}
