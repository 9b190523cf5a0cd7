import { z } from 'zod';
import { NameSchema, ObjectMetaSchema } from './objectMeta.js';
import { DeviceMqttGrantSchema } from './mqttFilters.js';

/**
 * Devices, their models and twins (ARCHITECTURE.md: "Conflict rule for twins"). The cloud
 * owns `desired` (operators write it), the device owns `reported` (through the edge). Each
 * section has a version and per-property timestamps; the edge computes the delta.
 */

export const PropertyNameSchema = z.string().min(1).max(128).regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'must start with a letter or "_" and hold letters, digits, "_", "." or "-"')
  // Would collide with JavaScript object internals when used as a map key.
  .refine((n) => !['__proto__', 'constructor', 'prototype'].includes(n), 'is a reserved name');
export const PropertyTypeSchema = z.enum(['int', 'float', 'double', 'string', 'boolean', 'bytes']);
export type PropertyType = z.infer<typeof PropertyTypeSchema>;
/** JSON value of a property; `bytes` travel base64-encoded. */
export const PropertyValueSchema = z.union([z.number(), z.string(), z.boolean()]);
export type PropertyValue = z.infer<typeof PropertyValueSchema>;

export const ModelPropertySchema = z.strictObject({
  name: PropertyNameSchema,
  type: PropertyTypeSchema,
  accessMode: z.enum(['ReadOnly', 'ReadWrite']).default('ReadOnly'),
  unit: z.string().max(32).optional(),
  minimum: z.number().optional(),
  maximum: z.number().optional(),
  description: z.string().max(1024).optional(),
}).refine((p) => p.minimum === undefined || p.maximum === undefined || p.minimum <= p.maximum, { message: 'minimum must not exceed maximum', path: ['minimum'] });
export type ModelProperty = z.infer<typeof ModelPropertySchema>;

export const DeviceModelSpecSchema = z.strictObject({
  /** Field protocol the devices of this model speak: modbus, opcua, virtual, … */
  protocol: z.string().min(1).max(64),
  properties: z.array(ModelPropertySchema).min(1).max(1000)
    .refine((ps) => new Set(ps.map((p) => p.name)).size === ps.length, 'property names must be unique'),
});
export type DeviceModelSpec = z.infer<typeof DeviceModelSpecSchema>;

export const DeviceModelSchema = z.strictObject({ kind: z.literal('DeviceModel'), metadata: ObjectMetaSchema, spec: DeviceModelSpecSchema });
export type DeviceModel = z.infer<typeof DeviceModelSchema>;

/** How a mapper reaches one property: protocol-specific (`register`, `nodeId`, `scale`, …). */
export const PropertyVisitorSchema = z.strictObject({
  name: PropertyNameSchema,
  visitor: z.record(z.string(), z.unknown()).default({}),
  /** How often the mapper reads the property from the device. */
  collectCycleMs: z.number().int().min(50).max(86_400_000).default(1000),
  /** How often the mapper publishes it as reported. */
  reportCycleMs: z.number().int().min(50).max(86_400_000).default(1000),
});

export const TimestampsSchema = z.record(z.string(), z.strictObject({ updatedAt: z.string() }));

export const DeviceSpecSchema = z.strictObject({
  model: NameSchema,
  nodeName: NameSchema,
  protocol: z.strictObject({ name: z.string().min(1).max(64), config: z.record(z.string(), z.unknown()).default({}) }),
  properties: z.array(PropertyVisitorSchema).default([]),
  /** The twin's desired section (cloud wins). */
  desired: z.record(PropertyNameSchema, PropertyValueSchema).default({}),
  desiredVersion: z.number().int().nonnegative().default(0),
  desiredMetadata: TimestampsSchema.default({}),
  /** The model, copied in by cloudcore so the edge can check values offline. */
  modelSpec: DeviceModelSpecSchema.optional(),
  /** scrypt hash of the device's MQTT password (`scrypt$<salt>$<hash>`); the password is shown once. */
  credentialHash: z.string().optional(),
  /**
   * The device's X.509 certificates the edge broker accepts (serial hex lower case, notAfter ISO),
   * issued by the cloud CA through `POST /devices/{name}/certificate`. An allow-list that travels
   * with the device to its node: removing an entry revokes that certificate there.
   */
  certificates: z.array(z.strictObject({ serial: z.string().regex(/^[0-9a-f]+$/), notAfter: z.string() })).max(16).optional(),
  /**
   * App topics (`apps/…`) a device that speaks plain MQTT may use beside its twin topics
   * (docs/mqtt.md, "Application identities and grants"). Unset: none.
   */
  mqtt: DeviceMqttGrantSchema.optional(),
});
export type DeviceSpec = z.infer<typeof DeviceSpecSchema>;

export const ReportedTwinSchema = z.strictObject({
  reported: z.record(PropertyNameSchema, PropertyValueSchema),
  /** Bumped by the edge on every accepted report. */
  version: z.number().int().nonnegative(),
  metadata: TimestampsSchema,
});
export type ReportedTwin = z.infer<typeof ReportedTwinSchema>;

export const DeviceStatusSchema = z.strictObject({
  twin: ReportedTwinSchema,
  online: z.boolean(),
  lastSeen: z.string().nullable(),
  /** Device object generation the edge held when reporting. */
  observedGeneration: z.number().int().nonnegative().optional(),
  /** Offline, behind a mapper: why the mapper cannot reach it (its last `mapper/state` error). */
  offlineReason: z.string().optional(),
});

export const DeviceSchema = z.strictObject({
  kind: z.literal('Device'),
  metadata: ObjectMetaSchema,
  spec: DeviceSpecSchema,
  status: DeviceStatusSchema.optional(),
});
export type Device = z.infer<typeof DeviceSchema>;

/** What operators send to create/replace a device (desired is set through the twin API afterwards, or initially here). */
export const DeviceInputSchema = z.strictObject({
  apiVersion: z.string().optional(),
  kind: z.literal('Device').optional(),
  metadata: ObjectMetaSchema,
  spec: DeviceSpecSchema.omit({ desiredVersion: true, desiredMetadata: true, modelSpec: true, credentialHash: true, certificates: true }).extend({
    /**
     * Read-only: the certificate allow-list is written only by issuing and revoking through the
     * API. Accepted and ignored here, so a device read with `get -o yaml` applies back unchanged.
     */
    certificates: z.unknown().optional(),
  }),
  status: z.unknown().optional(),
});

/** What operators send to create/replace a device model. */
export const DeviceModelInputSchema = z.strictObject({
  apiVersion: z.string().optional(),
  kind: z.literal('DeviceModel').optional(),
  metadata: ObjectMetaSchema,
  spec: DeviceModelSpecSchema,
  status: z.unknown().optional(),
});
export type DeviceModelInput = z.infer<typeof DeviceModelInputSchema>;
export type DeviceInput = z.infer<typeof DeviceInputSchema>;

/**
 * One device as a mapper reads it from its edge (`GET /mapper/v1/devices?protocol=`): no
 * credentials, no status. `model` is the device's copy of its DeviceModel; null while the edge
 * has none (the cloud copies the model into each device), and a mapper cannot serve the device
 * until it has one. Parsed leniently (defaults) so that one device's problem names that device.
 */
export const MapperDeviceSchema = z.object({
  name: NameSchema,
  protocol: z.object({ name: z.string().min(1).max(64), config: z.record(z.string(), z.unknown()).default({}) }),
  properties: z.array(PropertyVisitorSchema).default([]),
  desired: z.record(z.string(), PropertyValueSchema).default({}),
  /** The DeviceModel's name, to say which model is missing. */
  modelName: NameSchema.optional(),
  model: DeviceModelSpecSchema.nullable(),
});
export type MapperDeviceEntry = z.infer<typeof MapperDeviceSchema>;

/** The whole answer; a mapper checks the envelope, then each device on its own. */
export const MapperDeviceListSchema = z.object({ node: z.string(), devices: z.array(MapperDeviceSchema) });
export type MapperDeviceList = z.infer<typeof MapperDeviceListSchema>;

/** The device list a mapper of `protocol` on `node` reads, from the node's desired devices. */
export function mapperDeviceList(node: string, devices: readonly Device[], protocol: string): MapperDeviceList {
  return {
    node,
    devices: devices.filter((d) => d.spec.protocol.name === protocol).map((d) => ({
      name: d.metadata.name,
      protocol: d.spec.protocol,
      properties: d.spec.properties,
      desired: d.spec.desired,
      modelName: d.spec.model,
      model: d.spec.modelSpec ?? null,
    })),
  };
}

/**
 * A twin as people and devices read it: `GET /devices/{name}/twin` on the cloud, and the answer
 * to `ef/devices/<id>/twin/get` on the edge. Both sides build it with twinView().
 */
export const TwinViewSchema = z.object({
  desired: z.record(z.string(), PropertyValueSchema),
  reported: z.record(z.string(), PropertyValueSchema),
  delta: z.record(z.string(), PropertyValueSchema),
  version: z.object({ desired: z.number().int(), reported: z.number().int() }),
  metadata: z.object({ desired: TimestampsSchema, reported: TimestampsSchema }),
});
export type TwinView = z.infer<typeof TwinViewSchema>;

/** The twin view of a device: its desired section (spec) and its reported section, if any yet. */
export function twinView(spec: Pick<DeviceSpec, 'desired' | 'desiredVersion' | 'desiredMetadata'>, reported: ReportedTwin | undefined): TwinView {
  const reportedValues = reported?.reported ?? {};
  return {
    desired: spec.desired,
    reported: reportedValues,
    delta: twinDelta(spec.desired, reportedValues),
    version: { desired: spec.desiredVersion, reported: reported?.version ?? 0 },
    metadata: { desired: spec.desiredMetadata, reported: reported?.metadata ?? {} },
  };
}

/** PATCH /devices/{name}/twin: a JSON merge patch of desired; null deletes a key. */
export const DesiredPatchSchema = z.record(PropertyNameSchema, PropertyValueSchema.nullable());

/**
 * A mapper's view of one of its devices (`ef/devices/<id>/mapper/state`): whether it reaches
 * the device over its field protocol, and why not. While a connected mapper says reachable,
 * the edge counts the device online.
 */
export const MapperDeviceStateSchema = z.strictObject({ reachable: z.boolean(), error: z.string().max(1024).optional() });
export type MapperDeviceState = z.infer<typeof MapperDeviceStateSchema>;

/** One telemetry sample a device published. */
export const TelemetrySampleSchema = z.strictObject({ t: z.string(), values: z.record(PropertyNameSchema, PropertyValueSchema) });
export type TelemetrySample = z.infer<typeof TelemetrySampleSchema>;

// ---- pure twin logic shared by both sides ---------------------------------------------------

/** Why a value does not fit a model property, or null when it does. */
export function checkPropertyValue(prop: ModelProperty, value: PropertyValue, writing: boolean): string | null {
  if (writing && prop.accessMode === 'ReadOnly') return `property "${prop.name}" is ReadOnly`;
  switch (prop.type) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) return `property "${prop.name}" must be an integer`;
      break;
    case 'float': case 'double':
      if (typeof value !== 'number' || !Number.isFinite(value)) return `property "${prop.name}" must be a number`;
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return `property "${prop.name}" must be true or false`;
      break;
    case 'string':
      if (typeof value !== 'string') return `property "${prop.name}" must be a string`;
      break;
    case 'bytes':
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return `property "${prop.name}" must be base64 bytes`;
      break;
  }
  if (typeof value === 'number') {
    if (prop.minimum !== undefined && value < prop.minimum) return `property "${prop.name}" must be ≥ ${prop.minimum}, got ${value}`;
    if (prop.maximum !== undefined && value > prop.maximum) return `property "${prop.name}" must be ≤ ${prop.maximum}, got ${value}`;
  }
  return null;
}

/** Checks a map of values against a model; returns the first problem naming the property. */
export function checkProperties(model: DeviceModelSpec, values: Record<string, PropertyValue | null>, writing: boolean): { property: string; message: string } | null {
  for (const [name, value] of Object.entries(values)) {
    const prop = model.properties.find((p) => p.name === name);
    if (!prop) return { property: name, message: `unknown property "${name}" (model has: ${model.properties.map((p) => p.name).join(', ')})` };
    if (value === null) continue;
    const problem = checkPropertyValue(prop, value, writing);
    if (problem) return { property: name, message: problem };
  }
  return null;
}

/** Desired properties whose value differs from reported: what the device still has to apply. */
export function twinDelta(desired: Record<string, PropertyValue>, reported: Record<string, PropertyValue>): Record<string, PropertyValue> {
  const delta: Record<string, PropertyValue> = {};
  for (const [k, v] of Object.entries(desired)) if (reported[k] !== v) delta[k] = v;
  return delta;
}

/** JSON merge patch (RFC 7396) of a flat property map: null deletes. */
export function mergeProperties(current: Record<string, PropertyValue>, patch: Record<string, PropertyValue | null>): Record<string, PropertyValue> {
  const next = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else next[k] = v;
  }
  return next;
}
