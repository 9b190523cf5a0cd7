import type { FastifyInstance } from 'fastify';
import { DataObjectInputSchema, type Config, type DataObjectInput, type Secret, DataObjectListSchema, DataObjectSchema } from '../../../protocol/index.js';
import { ApiError } from '../plumbing/errors.js';
import { present } from '../views/present.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { NameParams, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

/**
 * `/configs` and `/secrets`: key → value data that workloads use as env and/or files. A change
 * rolls every workload that uses it (the scheduler copies the data into the Workloads).
 * Secret values are write-only: reads show the keys.
 */
export async function dataObjectRoutes(app: FastifyInstance, { store }: ResourceRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const one = DataObjectSchema;
  const list = DataObjectListSchema;
  for (const [kind, path] of [['Config', 'configs'], ['Secret', 'secrets']] as const) {
    const build = (input: DataObjectInput, keepRv: boolean): Config | Secret => {
      if (input.kind !== undefined && input.kind !== kind) throw new ApiError(400, `kind: expected "${kind}" at /${path}, got "${input.kind}"`, 'kind');
      const { name, labels, resourceVersion } = input.metadata;
      return {
        kind,
        metadata: { name, ...(labels ? { labels } : {}), ...(keepRv && resourceVersion !== undefined ? { resourceVersion } : {}) },
        data: input.data,
      };
    };
    api.get(`/${path}`, { schema: { response: { '2xx': list } } }, async () => {
      const { items, revision } = await store.list(kind);
      return { items: items.map(present), resourceVersion: revision };
    });
    api.get(`/${path}/:name`, { schema: { params: NameParams, response: { '2xx': one } } }, async (request) => present(await getOrNotFound(store, kind, request.params.name)));
    api.post(`/${path}`, { schema: { body: DataObjectInputSchema, response: { '2xx': one } } }, async (request, reply) =>
      reply.code(201).send(present(await store.create(build(request.body, false)))));
    api.put(`/${path}/:name`, { schema: { params: NameParams, body: DataObjectInputSchema, response: { '2xx': one } } }, async (request) => {
      if (request.body.metadata.name !== request.params.name) {
        throw new ApiError(400, `metadata.name: "${request.body.metadata.name}" does not match "${request.params.name}" in the path`, 'metadata.name');
      }
      return present(await store.update(build(request.body, true)));
    });
    api.delete(`/${path}/:name`, { schema: { params: NameParams, response: { '2xx': one } } }, async (request) => present(await store.delete(kind, request.params.name)));
  }
}
