import type { FastifyInstance } from 'fastify';
import { HealthSchema } from '../../protocol/index.js';
import type { Store } from '../store/store.js';
import type { TelemetryStore } from '../telemetry/telemetryStore.js';
import { appRoutes } from './routes/apps.js';
import { auditRequests, type AuditSink } from './plumbing/auditHook.js';
import { auditRoutes } from './routes/audit.js';
import { bearerAuth, OperatorAuth, type ApiTokens } from './plumbing/auth.js';
import { API_BODY_LIMIT_BYTES, registerErrorHandling } from './plumbing/errors.js';
import { dataObjectRoutes } from './routes/dataObjects.js';
import { dataRoutes, type RouteApiDeps } from './routes/dataRoutes.js';
import { deviceModelRoutes } from './routes/deviceModels.js';
import { deviceRoutes } from './routes/devices.js';
import { deviceTwinRoutes } from './routes/deviceTwin.js';
import { eventRoutes } from './routes/events.js';
import { fleetRoutes } from './routes/fleet.js';
import type { FleetLinks } from './views/fleetView.js';
import { nodeRoutes } from './routes/nodes.js';
import { nodeStreamRoutes, type EdgeTunnel } from './routes/nodeStreams.js';
import { operatorTokenRoutes } from './routes/operatorTokens.js';
import type { ResourceRoutesOptions } from './plumbing/routeContext.js';
import { rolloutRoutes } from './routes/rollouts.js';
import { agentUpgradeRoutes } from './routes/agentUpgrades.js';
import { tokenRoutes } from './routes/tokens.js';
import { deviceCertificateRoutes } from './routes/deviceCertificates.js';
import type { ServerTls } from '../pki/serverTls.js';
import { DEFAULT_DEVICE_CERT_LIFETIME_SECONDS } from '../../protocol/certificatePolicy.js';
import { unreadableRoutes } from './routes/unreadable.js';
import { DEFAULT_MAX_STREAMS_PER_ADDRESS, WatchStreams } from './views/watchStream.js';
import { StreamSlots } from '../limits/streamSlots.js';
import { workloadRoutes } from './routes/workloads.js';
import { zodSerializerCompiler, zodValidatorCompiler, type ZodTypeProvider } from './plumbing/zodSchemas.js';

/**
 * The operator REST API (docs/api.md), mounted at `/api/v1`:
 *
 *   /api/v1                     JSON only, 1 MiB bodies, zod-validated, errors as {error, field?}
 *   ├── GET /healthz            no auth
 *   └── (bearer auth: admin, or readonly for GET; bootstrap tokens or named ones; audited)
 *       ├── /nodes              list · watch · get · patch labels · delete
 *       ├── /tokens             mint a join token
 *       ├── /operatortokens     named operator tokens: create (token shown once) · list · revoke   (admin only)
 *       ├── /audit              query the audit log (admin only)
 *       ├── /apps               list · watch · create · get (with status.nodes, status.groups) · replace · delete
 *       │   └── /{a}/revisions · /{a}/rollout (get · events · pause · resume · abort · approve · rollback)
 *       ├── /rollouts           list · watch
 *       ├── /agent-upgrades     list · watch · get · create or new version · delete · {a}/(pause · resume · abort · approve · rollback)
 *       ├── /nodes/{n}/workloads/{w}/logs · exec   through the node's link (503 if not connected)
 *       ├── /configs, /secrets  list · get · create · replace · delete (secret values write-only)
 *       ├── /devicemodels       list · get · create · replace (re-copied into its devices) · delete
 *       ├── /devices            list · watch · get · create (password shown once) · replace · delete
 *       │   └── /{d}/credentials · /{d}/twin (get · merge-patch desired) · /{d}/telemetry
 *       │       · /{d}/certificate (sign a CSR) · /{d}/certificates/{serial} (revoke)
 *       ├── /workloads          list · watch
 *       ├── /fleet · /nodes/{n}/stats   dashboard views: rows per node (paged), last hour of CPU/memory/disk
 *       ├── /routes             list · watch · create · get (with status.nodes counters) · replace · delete · {r}/messages
 *       ├── /nodes/{n}/publish  an operator's message into the node's broker (apps/… topics), through its link
 *       ├── /nodes/{n}/grants   the node's app grants and their counters, as it last reported them
 *       ├── /events             list
 *       └── /unreadable         list objects the store holds but cannot read · delete one (409 if readable)
 */

export interface ApiOptions {
  store: Store;
  tokens: ApiTokens;
  /** The hub's per-node request channels, for logs and exec; without it those routes answer 503. */
  tunnel?: EdgeTunnel;
  /** Recent device telemetry; without it `GET /devices/{d}/telemetry` answers 503. */
  telemetry?: TelemetryStore;
  /** The hub's live view for /fleet and /nodes/{n}/stats (link quality, resource samples). */
  links?: FleetLinks;
  /** The audit log: every mutating request, exec, logs and refused attempt gets a line; GET /audit reads it. */
  audit?: AuditSink;
  /** Bounds watch and log streams open at once per source address (429 past it); a default one without. */
  streamSlots?: StreamSlots;
  /** cloudcore's HTTPS and CA: join tokens pin its bundle, device certificates are signed by it. Absent over plain HTTP. */
  tls?: ServerTls | undefined;
  deviceCertLifetimeSeconds?: number;
  /** cloudcore's URL as edges reach it (from --advertise-address), answered with every join token. */
  advertisedUrl?: () => string | undefined;
  /** Routes: routed messages stored here, route counters and publishes to nodes through the hub. */
  routes?: RouteApiDeps;
  /** Agent versions cloudcore serves under /dist: an agent upgrade to another is refused. */
  agentVersions?: () => readonly string[];
}

export type { ApiTokens, ApiRole, OperatorPrincipal } from './plumbing/auth.js';
export { OperatorAuth } from './plumbing/auth.js';
export type { AuditSink } from './plumbing/auditHook.js';
export { registerErrorHandling } from './plumbing/errors.js';

export async function apiPlugin(app: FastifyInstance, opts: ApiOptions): Promise<void> {
  const { store, tokens } = opts;
  const watches = new WatchStreams(store, undefined, opts.streamSlots ?? new StreamSlots(DEFAULT_MAX_STREAMS_PER_ADDRESS));
  // Watch responses never finish on their own; end them so the server can close.
  app.addHook('preClose', async () => watches.closeAll());

  await app.register(async (v1) => {
    registerErrorHandling(v1);
    // First, so its onResponse hook covers every route of the scope, refused ones included.
    if (opts.audit) await v1.register(auditRequests, { sink: opts.audit });
    v1.setValidatorCompiler(zodValidatorCompiler);
    v1.setSerializerCompiler(zodSerializerCompiler);
    acceptJsonOnly(v1);
    v1.addHook('onRoute', (route) => { route.bodyLimit ??= API_BODY_LIMIT_BYTES; });

    v1.withTypeProvider<ZodTypeProvider>().get('/healthz', { schema: { response: { '2xx': HealthSchema } } }, async () => ({ ok: true as const, revision: await store.revision() }));

    await v1.register(async (secured) => {
      const auth = new OperatorAuth(tokens, store, (err) => app.log.warn({ err }, 'cannot record when an operator token was last used'));
      await secured.register(bearerAuth, { auth });
      const routeOptions: ResourceRoutesOptions = { store, watches };
      await secured.register(nodeRoutes, { ...routeOptions, links: opts.links });
      await secured.register(tokenRoutes, { ...routeOptions, pin: opts.tls?.pin ?? null, advertisedUrl: opts.advertisedUrl });
      await secured.register(operatorTokenRoutes, routeOptions);
      if (opts.audit) await secured.register(auditRoutes, { audit: opts.audit });
      await secured.register(appRoutes, routeOptions);
      await secured.register(rolloutRoutes, routeOptions);
      await secured.register(agentUpgradeRoutes, { ...routeOptions, ...(opts.agentVersions ? { versions: opts.agentVersions } : {}) });
      await secured.register(workloadRoutes, routeOptions);
      await secured.register(eventRoutes, routeOptions);
      await secured.register(dataObjectRoutes, routeOptions);
      await secured.register(deviceModelRoutes, routeOptions);
      await secured.register(deviceRoutes, { ...routeOptions, telemetry: opts.telemetry });
      await secured.register(deviceTwinRoutes, { ...routeOptions, telemetry: opts.telemetry });
      await secured.register(deviceCertificateRoutes, {
        ...routeOptions, tls: opts.tls, deviceCertLifetimeSeconds: opts.deviceCertLifetimeSeconds ?? DEFAULT_DEVICE_CERT_LIFETIME_SECONDS,
      });
      await secured.register(fleetRoutes, { ...routeOptions, links: opts.links });
      await secured.register(unreadableRoutes, { ...routeOptions, telemetry: opts.telemetry });
      await secured.register(dataRoutes, { ...routeOptions, ...opts.routes });
      await secured.register(nodeStreamRoutes, { ...routeOptions, tunnel: opts.tunnel ?? { requestsFor: async () => undefined } });
    });
  }, { prefix: '/api/v1' });
}

/**
 * Fastify also parses text/plain by default; the API answers 415 to anything that is not JSON.
 * JSON merge-patch is JSON, so PATCH clients that label their body that way are understood.
 */
function acceptJsonOnly(app: FastifyInstance): void {
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/merge-patch+json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
}
