import { z } from 'zod';
import { MAX_CSR_PEM_BYTES } from './certificates.js';
import { DeviceModelSchema, DeviceSchema, TelemetrySampleSchema, TwinViewSchema } from './devices.js';
import { NameSchema } from './objectMeta.js';
import { AppSchema, ConfigSchema, EventSchema, NodeSchema, OperatorRoleSchema, SecretSchema, WorkloadSchema } from './resources.js';
import { AppRevisionSchema } from './rollouts.js';
import { AgentUpgradeSchema } from './agentUpgrade.js';

/**
 * The answers of cloudcore's REST API (docs/api.md), one schema per answer. cloudcore declares
 * them as its routes' response schemas (an answer that drifts from its schema is a 500 there,
 * never a half-read table here), and edgectl parses with the same ones. Objects are the
 * resource schemas; this file adds the envelopes around them.
 */

/** The store revision a list was read at: pass it as `resourceVersion` to watch from there. */
const ListMeta = { resourceVersion: z.number().int().nonnegative() };

export const NodeListSchema = z.object({ items: z.array(NodeSchema), ...ListMeta });
export const AppListSchema = z.object({ items: z.array(AppSchema), ...ListMeta });
export const WorkloadListSchema = z.object({ items: z.array(WorkloadSchema), ...ListMeta });
/** A Config or a Secret (the two data objects share their routes' shape: /configs, /secrets). */
export const DataObjectSchema = z.discriminatedUnion('kind', [ConfigSchema, SecretSchema]);
export const DataObjectListSchema = z.object({ items: z.array(DataObjectSchema), ...ListMeta });
export const DeviceModelListSchema = z.object({ items: z.array(DeviceModelSchema), ...ListMeta });
export const DeviceListSchema = z.object({ items: z.array(DeviceSchema), ...ListMeta });
export const AgentUpgradeListSchema = z.object({ items: z.array(AgentUpgradeSchema), ...ListMeta });
export const EventListSchema = z.object({ items: z.array(EventSchema) });
export const AppRevisionListSchema = z.object({ items: z.array(AppRevisionSchema) });
export const TelemetryListSchema = z.object({ items: z.array(TelemetrySampleSchema) });

export type NodeList = z.infer<typeof NodeListSchema>;
export type AppList = z.infer<typeof AppListSchema>;
export type WorkloadList = z.infer<typeof WorkloadListSchema>;
export type DeviceModelList = z.infer<typeof DeviceModelListSchema>;
export type DeviceList = z.infer<typeof DeviceListSchema>;
export type EventList = z.infer<typeof EventListSchema>;
export type TelemetryList = z.infer<typeof TelemetryListSchema>;

/** GET /healthz. */
export const HealthSchema = z.object({ ok: z.literal(true), revision: z.number().int().nonnegative() });

/** POST /tokens: the join token, shown once. */
export const TokenResponseSchema = z.object({
  token: z.string().min(1), node: z.string(), expiresAt: z.string(),
  /** cloudcore's advertised URL (first --advertise-address, its port), when it has one: what `--print-join-command` puts in the line. */
  cloudUrl: z.string().optional(),
});
export type TokenResponse = z.infer<typeof TokenResponseSchema>;

/** POST /devices/{d}/certificate: a CSR made where the device's key lives (edgectl device certificate). */
export const DeviceCertificateRequestSchema = z.strictObject({
  csr: z.string().min(1).max(MAX_CSR_PEM_BYTES),
  /** Shorter or longer than cloudcore's --device-cert-lifetime-seconds. */
  lifetimeSeconds: z.number().int().min(60).max(10 * 365 * 86_400).optional(),
});
/** The device's certificate, the CA bundle the broker's certificates chain to, and what was recorded on the device. */
export const DeviceCertificateResponseSchema = z.object({
  device: z.string(), certificate: z.string().min(1), caBundle: z.string().min(1), serial: z.string(), notAfter: z.string(),
});
export type DeviceCertificateResponse = z.infer<typeof DeviceCertificateResponseSchema>;
/** DELETE /devices/{d}/certificates/{serial}: the certificates the device still has. */
export const DeviceCertificateListSchema = z.object({ device: z.string(), certificates: z.array(z.object({ serial: z.string(), notAfter: z.string() })) });

/** POST /nodes/{n}/revoke: whether the node had a credential to revoke. */
export const NodeRevokeAnswerSchema = z.strictObject({ node: z.string(), revoked: z.boolean() });
export type NodeRevokeAnswer = z.infer<typeof NodeRevokeAnswerSchema>;

/** POST /nodes/{n}/workloads/{w}/exec. */
export const ExecAnswerSchema = z.object({ exitCode: z.number().int().nullable(), stdout: z.string(), stderr: z.string(), timedOut: z.boolean() });
export type ExecAnswer = z.infer<typeof ExecAnswerSchema>;

/** A device's MQTT login, shown once: POST /devices (beside the device) and POST /devices/{d}/credentials. */
export const DeviceCredentialsSchema = z.object({ username: z.string(), password: z.string().min(1) });
export type DeviceCredentials = z.infer<typeof DeviceCredentialsSchema>;
/** POST /devices answers the device with its one-time credentials beside it. */
export const CreatedDeviceSchema = DeviceSchema.extend({ credentials: DeviceCredentialsSchema });

/** GET /unreadable: objects the store holds but cannot read, and why. */
export const UnreadableListSchema = z.object({ items: z.array(z.object({ kind: z.string(), name: z.string(), reason: z.string() })) });
export type UnreadableList = z.infer<typeof UnreadableListSchema>;
/** DELETE /unreadable/{kind}/{name}. */
export const UnreadableDeletedSchema = z.object({ kind: z.string(), name: z.string(), deleted: z.literal(true), resourceVersion: z.number() });
export type UnreadableDeleted = z.infer<typeof UnreadableDeletedSchema>;

export { TwinViewSchema };

/** What a watch reports of each object: the same words as the store's change log and Kubernetes. */
export const WatchEventTypeSchema = z.enum(['ADDED', 'MODIFIED', 'DELETED']);
export type WatchEventType = z.infer<typeof WatchEventTypeSchema>;

/** One line of a watch (`?watch=true`, newline-delimited JSON). */
export function watchLineSchema<S extends z.ZodType>(object: S) {
  return z.object({ type: WatchEventTypeSchema, object });
}

// ---- Named operator tokens and the audit log -------------------------------------------------

/** Longest lifetime of a named operator token: one year. */
export const MAX_OPERATOR_TOKEN_TTL_SECONDS = 365 * 24 * 3600;

/** POST /operatortokens. */
export const OperatorTokenRequestSchema = z.strictObject({
  name: NameSchema,
  role: OperatorRoleSchema,
  /** Lifetime in seconds; default 90 days, at most a year. */
  ttlSeconds: z.number().int().positive().max(MAX_OPERATOR_TOKEN_TTL_SECONDS).default(90 * 24 * 3600),
});
export type OperatorTokenRequest = z.input<typeof OperatorTokenRequestSchema>;

/** A named operator token as listed: never the token or its hash. */
export const OperatorTokenViewSchema = z.object({
  name: z.string(), id: z.string(), role: OperatorRoleSchema,
  createdAt: z.string(), expiresAt: z.string(), lastUsedAt: z.string().nullable(),
});
export type OperatorTokenView = z.infer<typeof OperatorTokenViewSchema>;
/** POST /operatortokens answers the view and the token, shown this once. */
export const CreatedOperatorTokenSchema = OperatorTokenViewSchema.extend({ token: z.string().min(1) });
export type CreatedOperatorToken = z.infer<typeof CreatedOperatorTokenSchema>;
export const OperatorTokenListSchema = z.object({ items: z.array(OperatorTokenViewSchema) });
export type OperatorTokenList = z.infer<typeof OperatorTokenListSchema>;

/**
 * One line of cloudcore's audit log (`audit.log` in its data dir), and one item of GET /audit.
 * `token` names who: a named token's id and name, `bootstrap-admin`/`bootstrap-readonly` for the
 * generated ones, or null with `tokenName` "anonymous"/"unknown" for a refused attempt.
 */
export const AuditRecordSchema = z.object({
  time: z.string(),
  requestId: z.string(),
  tokenId: z.string().nullable(),
  tokenName: z.string(),
  role: OperatorRoleSchema.nullable(),
  method: z.string(),
  /** What was done: create, update, patch, delete, exec, logs, or the action a POST names (pause, credentials, …). */
  verb: z.string(),
  /** The route's pattern, e.g. /api/v1/nodes/:name. */
  route: z.string(),
  target: z.object({ kind: z.string(), name: z.string().nullable(), node: z.string().optional() }).nullable(),
  status: z.number().int(),
  sourceAddress: z.string(),
});
export type AuditRecord = z.infer<typeof AuditRecordSchema>;
/** GET /audit: matching records, oldest first; `truncated` when more matched than `limit`. */
export const AuditListSchema = z.object({ items: z.array(AuditRecordSchema), truncated: z.boolean() });
export type AuditList = z.infer<typeof AuditListSchema>;
