import { z } from 'zod';
import {
  checkProperties, DeviceInputSchema, DeviceModelSpecSchema, mergeProperties, ObjectMetaSchema,
  type Device, type DeviceModel, type DeviceModelSpec, type ObjectMeta, type PropertyValue,
} from '../../../protocol/index.js';
import { ApiError } from '../plumbing/errors.js';

/**
 * Pure rules for device models, devices and twins: what the store should hold for an
 * operator's input, and how a desired patch changes a device. Route handlers do the I/O.
 */

/** What operators send to create or replace a device model (kind optional, status ignored). */
import { DeviceModelInputSchema, type DeviceInput, type DeviceModelInput } from '../../../protocol/index.js';
export { DeviceModelInputSchema };
export type { DeviceInput, DeviceModelInput };

type Timestamps = Record<string, { updatedAt: string }>;

/** Only what the operator owns of metadata; `resourceVersion` is passed on for optimistic concurrency. */
function operatorMetadata(meta: ObjectMeta, keepResourceVersion: boolean): ObjectMeta {
  const { name, labels, annotations, resourceVersion } = meta;
  return {
    name,
    ...(labels !== undefined ? { labels } : {}),
    ...(annotations !== undefined ? { annotations } : {}),
    ...(keepResourceVersion && resourceVersion !== undefined ? { resourceVersion } : {}),
  };
}

export function deviceModelFromInput(input: DeviceModelInput, keepResourceVersion: boolean): DeviceModel {
  return { kind: 'DeviceModel', metadata: operatorMetadata(input.metadata, keepResourceVersion), spec: input.spec };
}

/** A 400 naming `field`, with the message prefixed by it as every validation error is. */
function fieldError(field: string, message: string): ApiError {
  return new ApiError(400, `${field}: ${message}`, field);
}

/** A `PUT` body must name the object of its path. */
export function checkPathName(bodyName: string, pathName: string): void {
  if (bodyName !== pathName) throw fieldError('metadata.name', `"${bodyName}" does not match "${pathName}" in the path`);
}

/**
 * Why `device` (its property visitors and desired values) does not fit `model`, as the
 * field at fault and a message; null when it fits.
 */
export function deviceModelMismatch(spec: Pick<Device['spec'], 'properties' | 'desired'>, model: DeviceModelSpec): { field: string; message: string } | null {
  const known = new Set(model.properties.map((p) => p.name));
  const seen = new Set<string>();
  for (const [i, visitor] of spec.properties.entries()) {
    const field = `spec.properties.${i}.name`;
    if (!known.has(visitor.name)) return { field, message: `unknown property "${visitor.name}" (model has: ${[...known].join(', ')})` };
    if (seen.has(visitor.name)) return { field, message: `property "${visitor.name}" is listed more than once` };
    seen.add(visitor.name);
  }
  const problem = checkProperties(model, spec.desired, true);
  if (problem) return { field: `spec.desired.${problem.property}`, message: problem.message };
  return null;
}

/**
 * The next desired section: the version moves by one when any value changed (the edge orders
 * desired sections by it, so it never goes back), and each changed property gets `now`.
 */
export function nextDesired(
  previous: { desired: Record<string, PropertyValue>; desiredVersion: number; desiredMetadata: Timestamps } | undefined,
  desired: Record<string, PropertyValue>,
  now: string,
): { desired: Record<string, PropertyValue>; desiredVersion: number; desiredMetadata: Timestamps } {
  if (!previous) {
    const desiredMetadata = Object.fromEntries(Object.keys(desired).map((k) => [k, { updatedAt: now }]));
    return { desired, desiredVersion: Object.keys(desired).length > 0 ? 1 : 0, desiredMetadata };
  }
  const desiredMetadata: Timestamps = {};
  let changed = false;
  for (const [k, v] of Object.entries(desired)) {
    const same = Object.prototype.hasOwnProperty.call(previous.desired, k) && previous.desired[k] === v;
    if (!same) changed = true;
    desiredMetadata[k] = same ? (previous.desiredMetadata[k] ?? { updatedAt: now }) : { updatedAt: now };
  }
  if (Object.keys(previous.desired).some((k) => !Object.prototype.hasOwnProperty.call(desired, k))) changed = true;
  if (!changed) return { desired: previous.desired, desiredVersion: previous.desiredVersion, desiredMetadata: previous.desiredMetadata };
  return { desired, desiredVersion: previous.desiredVersion + 1, desiredMetadata };
}

/**
 * The Device the store should hold for an operator's create (`previous` undefined) or replace.
 * Server-owned parts come from `previous`: status, the credential hash and the desired version.
 * Throws a 400 naming the field when the device does not fit its model.
 */
export function deviceFromInput(
  input: DeviceInput, model: DeviceModelSpec, previous: Device | undefined, now: string, keepResourceVersion: boolean,
): Device {
  const mismatch = deviceModelMismatch(input.spec, model);
  if (mismatch) throw fieldError(mismatch.field, mismatch.message);
  const desired = nextDesired(previous?.spec, input.spec.desired, now);
  // Credentials are never taken from input: the password hash and the certificate allow-list
  // change only through their own routes, so a re-applied file cannot revoke or forge them.
  const { certificates: _ignored, ...spec } = input.spec;
  const device: Device = {
    kind: 'Device',
    metadata: operatorMetadata(input.metadata, keepResourceVersion),
    spec: {
      ...spec,
      ...desired,
      modelSpec: structuredClone(model),
      ...(previous?.spec.credentialHash !== undefined ? { credentialHash: previous.spec.credentialHash } : {}),
      ...(previous?.spec.certificates !== undefined ? { certificates: previous.spec.certificates } : {}),
    },
  };
  if (previous?.status) device.status = previous.status;
  return device;
}

/**
 * PATCH /devices/{name}/twin: merges `patch` into desired after checking it against the
 * device's model (unknown, ReadOnly, wrong type or out of range → 400 naming the property).
 * Returns null when the patch changes nothing, so no write happens.
 */
export function patchDesired(device: Device, model: DeviceModelSpec, patch: Record<string, PropertyValue | null>, now: string): Device | null {
  const problem = checkProperties(model, patch, true);
  if (problem) throw new ApiError(400, `${problem.property}: ${problem.message}`, problem.property);
  const merged = mergeProperties(device.spec.desired, patch);
  const next = nextDesired(device.spec, merged, now);
  if (next.desiredVersion === device.spec.desiredVersion) return null;
  return { ...device, spec: { ...device.spec, ...next } };
}

/**
 * The desired version an `If-Match` header asks for: `3`, `"3"` or `W/"3"`; undefined when
 * absent or `*` (any version). Anything else is a 400.
 */
export function parseIfMatch(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = (Array.isArray(header) ? header.join(',') : header).trim();
  if (value === '*') return undefined;
  const match = value.match(/^(?:W\/)?"?(\d{1,15})"?$/);
  if (!match) throw new ApiError(400, `If-Match: must be the twin's desired version (a number, as in the ETag), got ${JSON.stringify(value)}`, 'If-Match');
  return Number(match[1]);
}

/** The ETag of a twin: its desired version, quoted as HTTP requires. */
export function twinETag(device: Device): string {
  return `"${device.spec.desiredVersion}"`;
}
