import { z } from 'zod';
import { DeviceModelSchema, DeviceSchema, TelemetrySampleSchema, TwinViewSchema } from './devices.js';
import { AppSchema, ConfigSchema, EventSchema, NodeSchema, SecretSchema, WorkloadSchema } from './resources.js';
import { AppRevisionSchema } from './rollouts.js';

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
export const TokenResponseSchema = z.object({ token: z.string().min(1), node: z.string(), expiresAt: z.string() });
export type TokenResponse = z.infer<typeof TokenResponseSchema>;

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
