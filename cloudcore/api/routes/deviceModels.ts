import type { FastifyInstance } from 'fastify';
import { matchesSelector, type Device, type DeviceModel, DeviceModelListSchema, DeviceModelSchema } from '../../../protocol/index.js';
import { ConflictError, type Store } from '../../store/store.js';
import { checkPathName, deviceModelFromInput, DeviceModelInputSchema, deviceModelMismatch } from '../rules/deviceSpec.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { NameParams, SelectableListQuery, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

/**
 * `/devicemodels`: the property catalogue devices are checked against. Each Device holds a
 * copy of its model's spec (`spec.modelSpec`) so the edge can check values offline; after a
 * model is replaced the model-copy controller (controllers/modelCopy.ts) re-copies it into
 * every device of that model. A model change that would make an existing device invalid, and
 * deleting a model still in use, are refused (409) naming it.
 */
export async function deviceModelRoutes(app: FastifyInstance, { store, watches }: ResourceRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/devicemodels', { schema: { querystring: SelectableListQuery, response: { '2xx': DeviceModelListSchema } } }, async (request, reply) => {
    const { labelSelector, watch, resourceVersion } = request.query;
    const includes = (m: DeviceModel) => !labelSelector || matchesSelector(labelSelector, m.metadata.labels);
    if (watch) return watches.serve(reply, { kind: 'DeviceModel', fromRevision: resourceVersion, includes });
    const { items, revision } = await store.list('DeviceModel');
    return { items: items.filter(includes), resourceVersion: revision };
  });

  api.get('/devicemodels/:name', { schema: { params: NameParams, response: { '2xx': DeviceModelSchema } } }, async (request) =>
    getOrNotFound(store, 'DeviceModel', request.params.name));

  api.post('/devicemodels', { schema: { body: DeviceModelInputSchema, response: { '2xx': DeviceModelSchema } } }, async (request, reply) =>
    reply.code(201).send(await store.create(deviceModelFromInput(request.body, false))));

  api.put('/devicemodels/:name', { schema: { params: NameParams, body: DeviceModelInputSchema, response: { '2xx': DeviceModelSchema } } }, async (request) => {
    const name = request.params.name;
    checkPathName(request.body.metadata.name, name);
    const model = deviceModelFromInput(request.body, true);
    const users = await devicesOfModel(store, name);
    for (const device of users) {
      const mismatch = deviceModelMismatch(device.spec, model.spec);
      if (mismatch) {
        throw new ConflictError(`device "${device.metadata.name}" no longer fits this model (its ${mismatch.field}: ${mismatch.message}): change or delete the device first`);
      }
    }
    // The copies in its devices follow from the controller (controllers/modelCopy.ts).
    return store.update(model);
  });

  api.delete('/devicemodels/:name', { schema: { params: NameParams, response: { '2xx': DeviceModelSchema } } }, async (request) => {
    const name = request.params.name;
    const users = await devicesOfModel(store, name);
    if (users.length > 0) {
      const names = users.map((d) => d.metadata.name);
      throw new ConflictError(`device model "${name}" is used by ${names.length} device(s) (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}): delete them first`);
    }
    return store.delete('DeviceModel', name);
  });
}

async function devicesOfModel(store: Store, model: string): Promise<Device[]> {
  return (await store.list('Device')).items.filter((d) => d.spec.model === model);
}
