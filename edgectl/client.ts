import { z } from 'zod';
import {
  RouteListSchema, RouteSchema, type Route, type RouteInput, AppListSchema, AppRevisionListSchema, CreatedDeviceSchema, DeviceCredentialsSchema, DeviceListSchema, DeviceModelListSchema,
  ErrorBodySchema, EventListSchema, ExecAnswerSchema, NodeListSchema, TelemetryListSchema, TokenResponseSchema, TwinViewSchema,
  UnreadableDeletedSchema, UnreadableListSchema, WorkloadListSchema, watchLineSchema, NodeRevokeAnswerSchema, type NodeRevokeAnswer,
  AppRevisionSchema, RolloutSchema, type AppRevision, type Rollout,
  AgentUpgradeListSchema, AgentUpgradeSchema, type AgentUpgrade, type AgentUpgradeRequest,
  AuditListSchema, CreatedOperatorTokenSchema, OperatorTokenListSchema, OperatorTokenViewSchema,
  type AuditList, type CreatedOperatorToken, type OperatorTokenList, type OperatorTokenRequest, type OperatorTokenView,
  AppSchema, DeviceModelSchema, DeviceSchema, NodeSchema, WorkloadSchema,
  DeviceCertificateListSchema, DeviceCertificateResponseSchema, type DeviceCertificateResponse,
  type App, type AppInput, type AppList, type Device, type DeviceCredentials, type DeviceList, type DeviceModel, type DeviceModelList,
  type EventList, type ExecAnswer, type Node, type NodeList, type PropertyValue, type TelemetryList, type TokenResponse, type TwinView,
  type UnreadableDeleted, type UnreadableList, type WatchEventType, type Workload, type WorkloadList,
} from '../protocol/index.js';
import type { DeviceInput, DeviceModelInput } from './applyFile.js';
import { networkReason, printWarning, queryString, sendOverWire, warningText, type Query } from './transport.js';

export { warningText } from './transport.js';

/**
 * Typed client for the cloudcore REST API (docs/api.md). Answers are parsed with the protocol's
 * answer schemas (protocol/api.ts, the ones cloudcore's routes declare), so a cloudcore that
 * drifts from the contract fails loudly here instead of printing half-empty tables. Failures
 * become one of two errors the CLI knows how to print.
 */

/**
 * cloudcore answered with an error status; `message`, `code` and `field` come from its
 * `{error, code, field?}` body (protocol/apiErrors.ts). `code` is undefined when the answer had
 * no such body (a proxy's error page, say).
 */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly field?: string, readonly code?: string) { super(message); }
}

/** No HTTP answer at all: refused, DNS, TLS or timeout. */
export class UnreachableError extends Error {
  constructor(readonly server: string, readonly reason: string) {
    super(`cannot reach cloudcore at ${server}: ${reason}`);
  }
}

export interface ApiClientOptions {
  server: string;
  /** Called with each warning cloudcore sends (HTTP `Warning` header); default: printed to stderr. */
  onWarning?: (text: string) => void;
  token?: string | undefined;
  /** Per request; a wedged server should not hang the CLI forever. */
  timeoutMs?: number;
  /**
   * PEM bundle the https server must chain to (the config's certificateAuthority/-Data); when
   * set, it is the only trust for every request, instead of the system store.
   */
  ca?: string | undefined;
}

interface RequestParts { query?: Query; body?: unknown; headers?: Record<string, string> }

export class ApiClient {
  private readonly base: string;

  constructor(private readonly options: ApiClientOptions) {
    // Keep any path prefix (a reverse proxy may mount cloudcore under /edgefleet).
    this.base = options.server.replace(/\/+$/, '');
  }

  get server(): string { return this.options.server; }

  listNodes(labelSelector?: string): Promise<NodeList> {
    return this.request(NodeListSchema, 'GET', '/api/v1/nodes', { query: { labelSelector } });
  }

  getNode(name: string): Promise<Node> {
    return this.request(NodeSchema, 'GET', `/api/v1/nodes/${enc(name)}`);
  }

  /** Merge patch: a null value removes the label. */
  patchNodeLabels(name: string, labels: Record<string, string | null>): Promise<Node> {
    return this.request(NodeSchema, 'PATCH', `/api/v1/nodes/${enc(name)}`, { body: { metadata: { labels } } });
  }

  revokeNode(name: string): Promise<NodeRevokeAnswer> {
    return this.request(NodeRevokeAnswerSchema, 'POST', `/api/v1/nodes/${enc(name)}/revoke`);
  }

  deleteNode(name: string): Promise<Node> {
    return this.request(NodeSchema, 'DELETE', `/api/v1/nodes/${enc(name)}`);
  }

  createToken(node: string, ttlSeconds: number): Promise<TokenResponse> {
    return this.request(TokenResponseSchema, 'POST', '/api/v1/tokens', { body: { node, ttlSeconds } });
  }

  /** A named operator token; the token itself is in this answer only. */
  createOperatorToken(request: OperatorTokenRequest): Promise<CreatedOperatorToken> {
    return this.request(CreatedOperatorTokenSchema, 'POST', '/api/v1/operatortokens', { body: request });
  }
  listOperatorTokens(): Promise<OperatorTokenList> { return this.request(OperatorTokenListSchema, 'GET', '/api/v1/operatortokens'); }
  revokeOperatorToken(name: string): Promise<OperatorTokenView> {
    return this.request(OperatorTokenViewSchema, 'DELETE', `/api/v1/operatortokens/${enc(name)}`);
  }
  /** The audit log's newest records matching `query` (since/until as ISO times), oldest first. */
  queryAudit(query: Query): Promise<AuditList> { return this.request(AuditListSchema, 'GET', '/api/v1/audit', { query }); }

  listApps(labelSelector?: string): Promise<AppList> {
    return this.request(AppListSchema, 'GET', '/api/v1/apps', { query: { labelSelector } });
  }

  getApp(name: string): Promise<App> {
    return this.request(AppSchema, 'GET', `/api/v1/apps/${enc(name)}`);
  }

  /** The app, or null when cloudcore has none by that name. */
  async findApp(name: string): Promise<App | null> {
    try {
      return await this.getApp(name);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }
  }

  createApp(app: AppInput): Promise<App> {
    return this.request(AppSchema, 'POST', '/api/v1/apps', { body: app });
  }

  replaceApp(app: AppInput): Promise<App> {
    return this.request(AppSchema, 'PUT', `/api/v1/apps/${enc(app.metadata.name)}`, { body: app });
  }

  deleteApp(name: string): Promise<App> {
    return this.request(AppSchema, 'DELETE', `/api/v1/apps/${enc(name)}`);
  }

  getRollout(app: string): Promise<Rollout> {
    return this.request(RolloutSchema, 'GET', `/api/v1/apps/${enc(app)}/rollout`);
  }

  listRevisions(app: string): Promise<{ items: AppRevision[] }> {
    return this.request(AppRevisionListSchema, 'GET', `/api/v1/apps/${enc(app)}/revisions`);
  }

  /** pause · resume · abort · approve ({wave}) · rollback ({toRevision}); answers the updated Rollout. */
  rolloutCommand(app: string, verb: 'pause' | 'resume' | 'abort' | 'approve' | 'rollback', body: Record<string, number> = {}): Promise<Rollout> {
    return this.request(RolloutSchema, 'POST', `/api/v1/apps/${enc(app)}/rollout/${verb}`, { body });
  }

  listAgentUpgrades(): Promise<{ items: AgentUpgrade[] }> {
    return this.request(AgentUpgradeListSchema, 'GET', '/api/v1/agent-upgrades');
  }

  getAgentUpgrade(name: string): Promise<AgentUpgrade> {
    return this.request(AgentUpgradeSchema, 'GET', `/api/v1/agent-upgrades/${enc(name)}`);
  }

  /** Creates an agent upgrade, or gives an existing one a new version. */
  requestAgentUpgrade(body: AgentUpgradeRequest): Promise<AgentUpgrade> {
    return this.request(AgentUpgradeSchema, 'POST', '/api/v1/agent-upgrades', { body });
  }

  agentUpgradeCommand(name: string, verb: 'pause' | 'resume' | 'abort' | 'approve' | 'rollback', body: Record<string, number> = {}): Promise<AgentUpgrade> {
    return this.request(AgentUpgradeSchema, 'POST', `/api/v1/agent-upgrades/${enc(name)}/${verb}`, { body });
  }

  watchAgentUpgrades(onUpgrade: (upgrade: AgentUpgrade) => boolean, resourceVersion?: number): Promise<void> {
    return this.follow('/api/v1/agent-upgrades', resourceVersion === undefined ? {} : { resourceVersion }, AgentUpgradeSchema, (_type, u) => onUpgrade(u));
  }

  /**
   * Follows `GET /rollouts?watch=true`, calling `onRollout` for each change until it returns
   * true or the stream ends. No timeout: a watch lasts as long as the user wants.
   */
  watchRollouts(onRollout: (rollout: Rollout) => boolean, resourceVersion?: number): Promise<void> {
    return this.follow('/api/v1/rollouts', resourceVersion === undefined ? {} : { resourceVersion }, RolloutSchema, (_type, rollout) => onRollout(rollout));
  }

  /**
   * Follows the devices' watch (`GET /devices?watch=true`) from `resourceVersion`, with the
   * list's filters, calling `onEvent` per change until it returns true or the stream ends.
   */
  watchDevices(filter: { node?: string | undefined; labelSelector?: string | undefined; resourceVersion: number }, onEvent: (type: WatchEventType, device: Device) => boolean | void): Promise<void> {
    return this.follow('/api/v1/devices', filter, DeviceSchema, onEvent);
  }

  /** Follows the nodes' watch from `resourceVersion` (see watchDevices). */
  watchNodes(filter: { labelSelector?: string | undefined; resourceVersion: number }, onEvent: (type: WatchEventType, node: Node) => boolean | void): Promise<void> {
    return this.follow('/api/v1/nodes', filter, NodeSchema, onEvent);
  }

  /** Follows the workloads' watch from `resourceVersion` (see watchDevices). */
  watchWorkloads(filter: { node?: string | undefined; app?: string | undefined; resourceVersion: number }, onEvent: (type: WatchEventType, workload: Workload) => boolean | void): Promise<void> {
    return this.follow('/api/v1/workloads', filter, WorkloadSchema, onEvent);
  }

  /** One NDJSON watch stream: `{type, object}` per line, parsed with `schema`. */
  private async follow<S extends z.ZodType>(path: string, query: Query, schema: S, onEvent: (type: WatchEventType, object: z.infer<S>) => boolean | void): Promise<void> {
    const abort = new AbortController();
    const response = await this.send('GET', path, { query: { ...query, watch: 'true' } }, abort.signal);
    const lineSchema = watchLineSchema(schema);
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of response.body ?? []) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (!line) continue;
          const parsed = lineSchema.safeParse(JSON.parse(line));
          if (!parsed.success) throw new ApiError(200, `unexpected line in the watch of ${path}: ${parsed.error.issues[0]?.message ?? 'bad line'}`);
          const event = parsed.data as { type: WatchEventType; object: z.infer<S> };
          if (onEvent(event.type, event.object) === true) return;
        }
      }
    } finally {
      abort.abort();
    }
  }

  listRoutes(): Promise<z.infer<typeof RouteListSchema>> {
    return this.request(RouteListSchema, 'GET', '/api/v1/routes');
  }

  getRoute(name: string): Promise<Route> {
    return this.request(RouteSchema, 'GET', `/api/v1/routes/${encodeURIComponent(name)}`);
  }

  /** The route, or null when cloudcore has none by that name. */
  findRoute(name: string): Promise<Route | null> {
    return orNull(this.getRoute(name));
  }

  createRoute(route: RouteInput): Promise<Route> {
    return this.request(RouteSchema, 'POST', '/api/v1/routes', { body: route });
  }

  replaceRoute(route: RouteInput): Promise<Route> {
    return this.request(RouteSchema, 'PUT', `/api/v1/routes/${enc(route.metadata.name)}`, { body: route });
  }

  listDeviceModels(): Promise<DeviceModelList> {
    return this.request(DeviceModelListSchema, 'GET', '/api/v1/devicemodels');
  }

  /** The model, or null when cloudcore has none by that name. */
  findDeviceModel(name: string): Promise<DeviceModel | null> {
    return orNull(this.request(DeviceModelSchema, 'GET', `/api/v1/devicemodels/${enc(name)}`));
  }

  createDeviceModel(model: DeviceModelInput): Promise<DeviceModel> {
    return this.request(DeviceModelSchema, 'POST', '/api/v1/devicemodels', { body: model });
  }

  replaceDeviceModel(model: DeviceModelInput): Promise<DeviceModel> {
    return this.request(DeviceModelSchema, 'PUT', `/api/v1/devicemodels/${enc(model.metadata.name)}`, { body: model });
  }

  deleteDeviceModel(name: string): Promise<DeviceModel> {
    return this.request(DeviceModelSchema, 'DELETE', `/api/v1/devicemodels/${enc(name)}`);
  }

  listDevices(filter: { node?: string | undefined; labelSelector?: string | undefined } = {}): Promise<DeviceList> {
    return this.request(DeviceListSchema, 'GET', '/api/v1/devices', { query: filter });
  }

  getDevice(name: string): Promise<Device> {
    return this.request(DeviceSchema, 'GET', `/api/v1/devices/${enc(name)}`);
  }

  /** The device, or null when cloudcore has none by that name. */
  findDevice(name: string): Promise<Device | null> {
    return orNull(this.getDevice(name));
  }

  /** Creates a device; its MQTT password is in this answer only. */
  async createDevice(device: DeviceInput): Promise<{ device: Device; credentials: DeviceCredentials }> {
    const { credentials, ...created } = await this.request(CreatedDeviceSchema, 'POST', '/api/v1/devices', { body: device });
    return { device: created, credentials };
  }

  replaceDevice(device: DeviceInput): Promise<Device> {
    return this.request(DeviceSchema, 'PUT', `/api/v1/devices/${enc(device.metadata.name)}`, { body: device });
  }

  /** Every object the cloud's store holds but cannot read. */
  listUnreadable(): Promise<UnreadableList> {
    return this.request(UnreadableListSchema, 'GET', '/api/v1/unreadable');
  }

  /** Removes an object the cloud's store holds but cannot read (409 if it is readable). */
  deleteUnreadable(kind: string, name: string): Promise<UnreadableDeleted> {
    return this.request(UnreadableDeletedSchema, 'DELETE', `/api/v1/unreadable/${enc(kind)}/${enc(name)}`);
  }

  deleteDevice(name: string): Promise<Device> {
    return this.request(DeviceSchema, 'DELETE', `/api/v1/devices/${enc(name)}`);
  }

  /** Replaces the device's MQTT password; the new one is in this answer only. */
  rotateDeviceCredentials(name: string): Promise<DeviceCredentials> {
    return this.request(DeviceCredentialsSchema, 'POST', `/api/v1/devices/${enc(name)}/credentials`);
  }

  /** Signs a device's CSR (made here; the key stays here) and adds its serial to the Device's allow-list. */
  issueDeviceCertificate(name: string, csr: string, lifetimeSeconds?: number): Promise<DeviceCertificateResponse> {
    return this.request(DeviceCertificateResponseSchema, 'POST', `/api/v1/devices/${enc(name)}/certificate`, { body: { csr, ...(lifetimeSeconds !== undefined ? { lifetimeSeconds } : {}) } });
  }
  /** Takes a serial off the device's allow-list: its node refuses that certificate from then on. */
  revokeDeviceCertificate(name: string, serial: string): Promise<z.infer<typeof DeviceCertificateListSchema>> {
    return this.request(DeviceCertificateListSchema, 'DELETE', `/api/v1/devices/${enc(name)}/certificates/${enc(serial)}`);
  }

  /** The device's samples after `since` (ISO time), oldest first, at most `limit`. */
  getTelemetry(device: string, opts: { since: string; limit: number }): Promise<TelemetryList> {
    return this.request(TelemetryListSchema, 'GET', `/api/v1/devices/${enc(device)}/telemetry`, { query: opts });
  }

  getTwin(device: string): Promise<TwinView> {
    return this.request(TwinViewSchema, 'GET', `/api/v1/devices/${enc(device)}/twin`);
  }

  /** JSON merge patch of desired (null deletes); with `ifMatch`, a stale desired version is a 409. */
  patchTwin(device: string, patch: Record<string, PropertyValue | null>, ifMatch?: number): Promise<TwinView> {
    return this.request(TwinViewSchema, 'PATCH', `/api/v1/devices/${enc(device)}/twin`, {
      body: patch,
      headers: { 'content-type': 'application/merge-patch+json', ...(ifMatch !== undefined ? { 'if-match': `"${ifMatch}"` } : {}) },
    });
  }

  listWorkloads(filter: { node?: string | undefined; app?: string | undefined } = {}): Promise<WorkloadList> {
    return this.request(WorkloadListSchema, 'GET', '/api/v1/workloads', { query: filter });
  }

  listEvents(filter: { node?: string | undefined; limit?: number | undefined } = {}): Promise<EventList> {
    return this.request(EventListSchema, 'GET', '/api/v1/events', { query: filter });
  }

  /**
   * Streams a workload's log through cloudcore and the node's link, calling `onText` with each
   * chunk; resolves when the stream ends (at once without `follow`).
   */
  async streamLogs(node: string, workload: string, opts: { tail: number; follow: boolean }, onText: (text: string) => void): Promise<void> {
    const path = `/api/v1/nodes/${enc(node)}/workloads/${enc(workload)}/logs`;
    // A followed log has no end: no timeout, the user stops it with Ctrl-C.
    const response = await this.send('GET', path, { query: { tail: opts.tail, follow: String(opts.follow) } }, opts.follow ? undefined : this.timeout());
    const decoder = new TextDecoder();
    for await (const chunk of response.body ?? []) onText(decoder.decode(chunk as Uint8Array, { stream: true }));
  }

  exec(node: string, workload: string, command: string[], timeoutSeconds: number): Promise<ExecAnswer> {
    return this.request(ExecAnswerSchema, 'POST', `/api/v1/nodes/${enc(node)}/workloads/${enc(workload)}/exec`,
      { body: { command, timeoutSeconds } }, AbortSignal.timeout((timeoutSeconds + 15) * 1000));
  }

  private timeout(): AbortSignal { return AbortSignal.timeout(this.options.timeoutMs ?? 30_000); }

  /** Sends a request; a non-2xx answer becomes an ApiError, a network failure an UnreachableError. */
  private async send(method: string, path: string, opts: RequestParts, signal: AbortSignal | undefined): Promise<Response> {
    const url = this.base + path + queryString(opts.query);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    Object.assign(headers, opts.headers);
    let response: Response;
    try {
      response = await sendOverWire(url, {
        method,
        headers,
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal,
        ca: this.options.ca,
      });
    } catch (err) {
      throw new UnreachableError(this.options.server, networkReason(err, this.options.ca !== undefined));
    }
    if (!response.ok) throw toApiError(response, await response.text(), Boolean(this.options.token));
    const warning = response.headers.get('warning');
    if (warning) (this.options.onWarning ?? printWarning)(warningText(warning));
    return response;
  }

  /** A call whose answer parses with `schema`; for API areas kept in their own files (edgectl/nodeData.ts), so this one stops growing. */
  async request<S extends z.ZodType>(
    schema: S, method: string, path: string, opts: RequestParts = {}, signal = this.timeout(),
  ): Promise<z.infer<S>> {
    const response = await this.send(method, path, opts, signal);
    const text = await response.text();
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new ApiError(response.status, `unexpected answer from cloudcore (${method} ${path}): not JSON`);
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ApiError(response.status,
        `unexpected answer from cloudcore (${method} ${path}): ${issue.path.join('.') || '(body)'}: ${issue.message}`);
    }
    return parsed.data;
  }
}

/** A 404 answer as null; every other failure stays an error. */
async function orNull<T>(pending: Promise<T>): Promise<T | null> {
  try {
    return await pending;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

/** An older cloudcore sends no `code`: its message still reaches the user. */
const LenientErrorBodySchema = ErrorBodySchema.partial({ code: true });

function toApiError(response: Response, text: string, hadToken: boolean): ApiError {
  let body: z.infer<typeof LenientErrorBodySchema> | undefined;
  try {
    const parsed = LenientErrorBodySchema.safeParse(JSON.parse(text));
    if (parsed.success) body = parsed.data;
  } catch { /* not JSON: fall back to the status line */ }
  let message = body?.error ?? `${response.status} ${response.statusText || 'error'}`.trim();
  // The most common first-run mistake: say how to fix it, not only what the server said.
  if (response.status === 401 && !hadToken) message += ' (pass --token or set EF_TOKEN)';
  return new ApiError(response.status, message, body?.field, body?.code);
}
