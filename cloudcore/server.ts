import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Server as HttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerFactory } from 'fastify';
import type { Logger } from 'pino';
import { apiPlugin, OperatorAuth, registerErrorHandling } from './api/index.js';
import { AuditFile } from './audit/auditFile.js';
import type { CloudSettings } from './config.js';
import { ControllerSet } from './controllers/controllerSet.js';
import { dashboardPlugin } from './dashboard/plugin.js';
import { ReleaseCatalog } from './releases/catalog.js';
import { advertisedCloudUrl, loadInstallerTemplate } from './releases/installer.js';
import { distPlugin } from './releases/plugin.js';
import { Hub } from './hub/hub.js';
import { CloudMetrics, registerMetrics } from './metrics/cloudMetrics.js';
import { loadSecretSealer, preparePrivateDataDir } from './dataDir.js';
import { createBoundedServer } from './limits/boundedServer.js';
import { ConnectionLimits } from './limits/connectionLimits.js';
import { StreamSlots } from './limits/streamSlots.js';
import { ensureOperatorTokens } from './operatorTokens.js';
import { ServerTls } from './pki/serverTls.js';
import { openStoreBackend } from './storeBackend.js';
import { ReplicaRuntime } from './cluster/replicaRuntime.js';
import { shareCloudCa, shareOperatorTokens } from './cluster/sharedBootstrap.js';
import { peerPlugin } from './peers/peerPlugin.js';
import { clusterPeers, peerTrustOf } from './peers/clusterPeers.js';
import { openSqliteTelemetry } from './telemetry/sqliteTelemetry.js';
import { RoutedMessages } from './telemetry/routedMessages.js';
import { RouteTraffic } from './hub/routeTraffic.js';
import type { Store } from './store/store.js';

/**
 * cloudcore, as a table of contents: one store, one HTTP server carrying the operator API
 * (`/api/v1`) and the edge hub (`/hub/v1`), and the controllers that turn apps into
 * per-node workloads, keep node status honest and copy device models into their devices.
 */
export interface CloudCore {
  url: string;
  /** The CA bundle's pin (what join tokens carry); null over plain HTTP. */
  caPin: string | null;
  adminToken: string;
  adminTokenPath: string;
  store: Store;
  hub: Hub;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startCloudCore(settings: CloudSettings, log: Logger): Promise<CloudCore> {
  preparePrivateDataDir(settings.dataDir, log);
  const sealer = loadSecretSealer(settings.secretKeyFile ?? join(settings.dataDir, 'secret-encryption.key'), log);
  const { store, etcd } = await openStoreBackend(settings, sealer, log);
  // With several replicas (store etcd): this one's lease, the registries and the shared secrets.
  const replica = etcd ? await ReplicaRuntime.join(etcd, sealer, settings, log) : undefined;
  // Telemetry samples stay in this replica's own file; with replicas, queries ask every replica.
  const localTelemetry = await openSqliteTelemetry({ path: join(settings.dataDir, 'telemetry.db') });
  const tokens = replica ? await shareOperatorTokens(replica.secrets, settings.dataDir) : ensureOperatorTokens(settings.dataDir);
  const offlineAfterMs = settings.offlineAfterSeconds * 1000;
  const audit = new AuditFile({ dir: settings.dataDir, maxBytes: settings.auditLogMaxBytes, files: settings.auditLogFiles });

  // HTTPS unless plain HTTP was asked for: the cloud CA, the server certificate (rotated by
  // ServerTls when it is our own) and the request for client certificates the hub's mTLS reads.
  // Replicas share one CA (edges pin it): the first one's, through etcd, unless the operator gave one.
  if (replica && !settings.insecurePlainHttp && settings.caCert === undefined) await shareCloudCa(replica.secrets, settings.dataDir, log);
  const tls = settings.insecurePlainHttp ? undefined : await ServerTls.open(settings, log);
  // Our own server (HTTP or HTTPS) with timeouts and a per-address connection cap, so nothing
  // before login can hold cloudcore open (cloudcore/limits/). HTTPS through a server factory keeps
  // the instance typed as one over node:http (an https.Server is one).
  const connections = new ConnectionLimits(settings.maxConnectionsPerAddress, log);
  const streamSlots = new StreamSlots(settings.maxStreamsPerAddress);
  const serverFactory: FastifyServerFactory = (handler) => {
    const server = createBoundedServer(settings, handler, tls?.serverOptions());
    if (tls) tls.attach(server as unknown as HttpsServer);
    connections.attach(server);
    return server;
  };
  const app: FastifyInstance = Fastify({
    serverFactory,
    loggerInstance: log as FastifyBaseLogger,
    // Every request is counted by the metrics plugin; a log line per request would drown the rest.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    // Unique across restarts: the audit log and the edge's exec log line name a request by it.
    genReqId: () => randomUUID(),
  });
  registerErrorHandling(app);
  // The releases under /dist (docs/install.md): checked once now so the log says what is served,
  // then re-checked on every request and every few seconds (a release copied in is seen by upgrades too).
  const distDir = settings.distDir ?? join(settings.dataDir, 'dist');
  const catalog = new ReleaseCatalog({ distDir, releaseKeyFile: settings.releasePublicKey ?? join(distDir, 'release-key.pub'), log });
  await catalog.refresh(true);
  const stopCatalog = catalog.watch(5000);
  const resyncSweepMs = etcd && settings.resyncSweepSeconds > 0 ? settings.resyncSweepSeconds * 1000 : undefined;
  // Routed messages (cloud routes) stay in this replica's own file, like telemetry.
  const routedMessages = new RoutedMessages(join(settings.dataDir, 'routed.db'));
  const routeTraffic = new RouteTraffic({
    store, messages: routedMessages, log, sendTo: (node, frame) => hub.sessions.get(node)?.sendRouteRequest(frame) ?? false,
  });
  const hub: Hub = new Hub({ store, telemetry: localTelemetry, log, offlineAfterMs, routes: routeTraffic, ...(replica ? { authority: replica.authority } : {}),
    ...(resyncSweepMs !== undefined ? { resyncSweepMs } : {}), artefacts: catalog, livenessFlushMs: Math.min(15_000, offlineAfterMs / 3),
    maxSettlingSessions: settings.maxSettlingSessions, tls,
    nodeCertLifetimeSeconds: settings.nodeCertLifetimeSeconds, nodeCertGraceSeconds: settings.nodeCertGraceSeconds,
    eventBudget: { perSecond: settings.eventsPerSecondPerNode, burst: settings.eventBurstPerNode } });
  // Before the API: its request-timing hooks only reach routes registered after them.
  registerMetrics(app, { metrics: new CloudMetrics({ hub, store, telemetry: localTelemetry, refused: { connections, streams: streamSlots }, ...(replica ? { replica } : {}) }), auth: new OperatorAuth(tokens, store) });
  const links = { quality: hub.linkQuality, stats: hub.nodeStats, liveLastSeen: (node: string) => hub.sessions.get(node)?.lastSeen };
  const advertisedUrl = () => advertisedCloudUrl(settings.advertiseAddress[0], tls ? 'https' : 'http', app.server.address());
  // Replicas: logs/exec of a node another replica holds go through that replica, telemetry
  // queries ask every replica, and the peer routes answer the other replicas' such calls.
  const peers = replica ? clusterPeers({
    selfId: replica.id, replicaToken: await replica.replicaToken(), trust: peerTrustOf(tls), hub, localTelemetry, directory: replica.directory, log,
  }) : undefined;
  if (peers) await app.register(peerPlugin, peers.plugin);
  const tunnel = peers?.tunnel ?? hub;
  const telemetry = peers?.telemetry ?? localTelemetry;
  await app.register(apiPlugin, { store, tokens, tunnel, telemetry, links, audit, streamSlots, tls, deviceCertLifetimeSeconds: settings.deviceCertLifetimeSeconds, advertisedUrl,
    routes: { traffic: routeTraffic, messages: routedMessages },
    agentVersions: () => catalog.verified().map((r) => r.version) });
  await app.register(dashboardPlugin);
  await app.register(distPlugin, { catalog, streamSlots, installerTemplate: loadInstallerTemplate(), scheme: tls ? 'https' : 'http' });
  await hub.register(app);

  const controllers = new ControllerSet({
    log, rolloutTickMs: settings.rolloutTickMs, offlineAfterMs, isConnected: (node) => hub.isConnected(node),
    ...(replica ? { offlineGuard: (node: string) => replica.sessions.absentGuard(node) } : {}),
    ...(resyncSweepMs !== undefined ? { resyncMs: resyncSweepMs } : {}),
  });
  // One cloudcore runs its controllers for good; replicas elect the one that runs them (after it
  // listens and is announced, so the leader is always a replica others can reach).
  if (!replica) await controllers.start(store);

  // Fastify names the address http:// when it did not create the HTTPS server itself.
  const scheme = (address: string) => (tls ? address.replace(/^http:/, 'https:') : address);
  const address = scheme(await app.listen({
    host: settings.host, port: settings.port, listenTextResolver: (at) => `Server listening at ${scheme(at)}`,
  }));
  if (replica) {
    await replica.announce(advertisedUrl() ?? address);
    replica.lead(controllers);
  }
  return {
    url: address,
    caPin: tls?.pin ?? null,
    adminToken: tokens.admin,
    adminTokenPath: tokens.adminPath,
    store,
    hub,
    app,
    async close() {
      await controllers.stop();
      tls?.close();
      stopCatalog();
      await app.close();
      // After the links closed: resigning and revoking the lease hands their nodes over at once.
      peers?.close();
      await replica?.close();
      await store.close();
      await localTelemetry.close();
      routedMessages.close();
      audit.close();
    },
  };
}

