import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DesiredPatchSchema, twinView, type Device, type DeviceModelSpec, type TelemetrySample, type TwinView, TelemetryListSchema, TwinViewSchema } from '../../../protocol/index.js';
import { ConflictError } from '../../store/store.js';
import { writeDevice, type DeviceRoutesOptions } from './devices.js';
import { parseIfMatch, patchDesired, twinETag } from '../rules/deviceSpec.js';
import { ApiError } from '../plumbing/errors.js';
import { getOrNotFound } from '../plumbing/routeContext.js';
import { NameParams, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

export const DEFAULT_TELEMETRY_LIMIT = 1000;
export const MAX_TELEMETRY_LIMIT = 10_000;

/** GET /devices/{name}/telemetry. */
export const TelemetryQuery = z.strictObject({
  since: z.iso.datetime({ offset: true, error: 'must be an ISO time like 2025-01-01T00:00:00Z' }).optional(),
  limit: z.string().regex(/^\d+$/, 'must be a whole number').transform(Number)
    .pipe(z.number().int().min(1).max(MAX_TELEMETRY_LIMIT)).default(DEFAULT_TELEMETRY_LIMIT),
});

/**
 * The twin of a device (`/devices/{name}/twin`) and its recent telemetry. Operators write only
 * `desired`, as a JSON merge patch checked against the device's model; the edge owns `reported`.
 * The twin's ETag is its desired version; `If-Match` with an older one is a 409.
 */
export async function deviceTwinRoutes(app: FastifyInstance, { store, telemetry }: DeviceRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/devices/:name/twin', { schema: { params: NameParams, response: { '2xx': TwinViewSchema } } }, async (request, reply): Promise<TwinView> => {
    const device = await getOrNotFound(store, 'Device', request.params.name);
    reply.header('etag', twinETag(device));
    return twinView(device.spec, device.status?.twin);
  });

  api.patch('/devices/:name/twin', { schema: { params: NameParams, body: DesiredPatchSchema, response: { '2xx': TwinViewSchema } } }, async (request, reply): Promise<TwinView> => {
    const name = request.params.name;
    const ifMatch = parseIfMatch(request.headers['if-match']);
    // Retrying a lost store race is safe even with If-Match: the desired version is checked
    // again on every fresh read, and a status write from the hub does not move it.
    const device = await writeDevice(store, name, undefined, (current) => {
      if (ifMatch !== undefined && ifMatch !== current.spec.desiredVersion) {
        throw new ConflictError(`twin of device "${name}" has desired version ${current.spec.desiredVersion}, not ${ifMatch} (If-Match): re-read it and retry`);
      }
      return patchDesired(current, modelOf(current), request.body, new Date().toISOString());
    });
    reply.header('etag', twinETag(device));
    return twinView(device.spec, device.status?.twin);
  });

  api.get('/devices/:name/telemetry', { schema: { params: NameParams, querystring: TelemetryQuery, response: { '2xx': TelemetryListSchema } } }, async (request): Promise<{ items: TelemetrySample[] }> => {
    const name = request.params.name;
    await getOrNotFound(store, 'Device', name);
    if (!telemetry) throw new ApiError(503, 'telemetry is not kept by this cloudcore (no telemetry store configured)');
    const { since, limit } = request.query;
    return { items: await telemetry.query(name, { ...(since !== undefined ? { since } : {}), limit }) };
  });
}

/** The model copy the device carries; a device without one was not written by this API. */
function modelOf(device: Device): DeviceModelSpec {
  if (!device.spec.modelSpec) throw new ConflictError(`device "${device.metadata.name}" holds no copy of its model "${device.spec.model}": replace the device (PUT) to refresh it`);
  return device.spec.modelSpec;
}
