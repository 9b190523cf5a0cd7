import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { DeviceInputSchema, matchesSelector, NameSchema, type Device, type DeviceModelSpec, CreatedDeviceSchema, DeviceCredentialsSchema, DeviceListSchema, DeviceSchema } from '../../../protocol/index.js';
import { NotFoundError, type Store } from '../../store/store.js';
import { notFoundMessage } from '../../store/objectMeta.js';
import { readModifyWrite } from '../../store/readModifyWrite.js';
import type { TelemetryStore } from '../../telemetry/telemetryStore.js';
import { issueDeviceCredentials, type DeviceCredentials } from '../rules/deviceCredentials.js';
import { checkPathName, deviceFromInput } from '../rules/deviceSpec.js';
import { ApiError } from '../plumbing/errors.js';
import { present } from '../views/present.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { NameParams, SelectableListQuery, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

export interface DeviceRoutesOptions extends ResourceRoutesOptions {
  /** Recent samples per device; without it the telemetry route answers 503. */
  telemetry?: TelemetryStore | undefined;
}

/** Re-reads and retries a device write that lost to a concurrent one (e.g. the hub's status report). */
const DEVICE_WRITE_ATTEMPTS = 5;

/** GET /devices: `?node=` and the usual label selector and watch. */
export const DeviceListQuery = z.strictObject({ ...SelectableListQuery.shape, node: NameSchema.optional() })
  .superRefine((query, ctx) => {
    if (query.resourceVersion !== undefined && !query.watch) {
      ctx.addIssue({ code: 'custom', path: ['resourceVersion'], message: 'is only allowed with watch=true' });
    }
  });

/**
 * `/devices`: field devices bound to an edge node, checked against their model. Creating a
 * device issues its MQTT password, shown once in the answer (`credentials`, beside the
 * device); `POST /devices/{name}/credentials` replaces it. Only a scrypt hash is stored and
 * it never leaves through the API. Status (online, reported twin) is the hub's to write: a
 * replace keeps it.
 */
export async function deviceRoutes(app: FastifyInstance, opts: DeviceRoutesOptions): Promise<void> {
  const { store, watches, telemetry } = opts;
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/devices', { schema: { querystring: DeviceListQuery, response: { '2xx': DeviceListSchema } } }, async (request, reply) => {
    const { labelSelector, node, watch, resourceVersion } = request.query;
    const includes = (d: Device) => !labelSelector || matchesSelector(labelSelector, d.metadata.labels);
    if (watch) return watches.serve(reply, { kind: 'Device', node, fromRevision: resourceVersion, includes });
    const { items, revision } = await store.list('Device', { node });
    return { items: items.filter(includes).map(present), resourceVersion: revision };
  });

  api.get('/devices/:name', { schema: { params: NameParams, response: { '2xx': DeviceSchema } } }, async (request) =>
    present(await getOrNotFound(store, 'Device', request.params.name)));

  api.post('/devices', { schema: { body: DeviceInputSchema, response: { '2xx': CreatedDeviceSchema } } }, async (request, reply) => {
    const input = request.body;
    const model = await modelSpecOf(store, input.spec.model);
    const device = deviceFromInput(input, model, undefined, new Date().toISOString(), false);
    const { credentials, credentialHash } = await issueDeviceCredentials(device.metadata.name);
    device.spec.credentialHash = credentialHash;
    const created = await store.create(device);
    await warnOfMissingNode(store, reply, created.spec.nodeName);
    return reply.code(201).send({ ...present(created), credentials });
  });

  api.put('/devices/:name', { schema: { params: NameParams, body: DeviceInputSchema, response: { '2xx': DeviceSchema } } }, async (request, reply) => {
    const input = request.body;
    checkPathName(input.metadata.name, request.params.name);
    const model = await modelSpecOf(store, input.spec.model);
    const clientVersion = input.metadata.resourceVersion;
    const updated = await writeDevice(store, request.params.name, clientVersion, (previous) =>
      deviceFromInput(input, model, previous, new Date().toISOString(), false));
    await warnOfMissingNode(store, reply, updated.spec.nodeName);
    return present(updated);
  });

  api.delete('/devices/:name', { schema: { params: NameParams, response: { '2xx': DeviceSchema } } }, async (request) => {
    const deleted = await store.delete('Device', request.params.name);
    await telemetry?.drop(request.params.name);
    return present(deleted);
  });

  api.post('/devices/:name/credentials', { schema: { params: NameParams, response: { '2xx': DeviceCredentialsSchema } } }, async (request): Promise<DeviceCredentials> => {
    const name = request.params.name;
    const { credentials, credentialHash } = await issueDeviceCredentials(name);
    await writeDevice(store, name, undefined, (device) => ({ ...device, spec: { ...device.spec, credentialHash } }));
    return credentials;
  });
}

/**
 * A device may name a node before it exists (as a Kubernetes pod may): it is stored, and the
 * answer carries a standard `Warning` header (as the Kubernetes API server's), which edgectl
 * prints, so a misspelt node name does not go unnoticed.
 */
async function warnOfMissingNode(store: Store, reply: FastifyReply, node: string): Promise<void> {
  if (await store.get('Node', node)) return;
  const text = `node "${node}" does not exist; the device is served once a node of that name joins`;
  reply.header('warning', `299 - "${text.replace(/["\\]/g, (c) => `\\${c}`)}"`);
}

/** The model a device names, or a 400 naming `spec.model` (the body is at fault, not the path). */
async function modelSpecOf(store: Store, model: string): Promise<DeviceModelSpec> {
  const found = await store.get('DeviceModel', model);
  if (!found) throw new ApiError(400, `spec.model: device model "${model}" not found: create it first`, 'spec.model');
  return found.spec;
}

/**
 * Read–change–write of one device (`readModifyWrite`): a concurrent write (the hub recording a
 * status report) is never overwritten; without a client resourceVersion the change is
 * re-applied to a fresh read, with one it is a 409. A change that returns null means "nothing
 * to write": the current device is the answer.
 */
export async function writeDevice(
  store: Store, name: string, clientVersion: number | undefined, change: (current: Device) => Device | null,
): Promise<Device> {
  return readModifyWrite(store, 'Device', name, (current) => change(current) ?? undefined, {
    attempts: DEVICE_WRITE_ATTEMPTS,
    expectedVersion: clientVersion,
    absent: () => new NotFoundError(notFoundMessage('Device', name)),
  });
}
