import type { FastifyInstance } from 'fastify';
import { AppInputSchema, matchesSelector, type App, type AppInput, AppListSchema, AppSchema } from '../../../protocol/index.js';
import { withNodeStates } from '../views/appStatus.js';
import { ApiError } from '../plumbing/errors.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { NameParams, SelectableListQuery, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

/**
 * The App the store should hold for an operator's input: only what the operator owns (name,
 * labels, annotations, spec). uid, creationTimestamp and generation are the store's; status is
 * derived from Workloads on read. `resourceVersion` is passed on for optimistic concurrency.
 */
export function appFromInput(input: AppInput, keepResourceVersion: boolean): App {
  const { name, labels, annotations, resourceVersion } = input.metadata;
  const metadata: App['metadata'] = { name };
  if (labels !== undefined) metadata.labels = labels;
  if (annotations !== undefined) metadata.annotations = annotations;
  if (keepResourceVersion && resourceVersion !== undefined) metadata.resourceVersion = resourceVersion;
  return { kind: 'App', metadata, spec: input.spec };
}

export async function appRoutes(app: FastifyInstance, { store, watches }: ResourceRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/apps', { schema: { querystring: SelectableListQuery, response: { '2xx': AppListSchema } } }, async (request, reply) => {
    const { labelSelector, watch, resourceVersion } = request.query;
    const includes = (a: App) => !labelSelector || matchesSelector(labelSelector, a.metadata.labels);
    if (watch) return watches.serve(reply, { kind: 'App', fromRevision: resourceVersion, includes });
    const { items, revision } = await store.list('App');
    const [workloads, rollouts] = await Promise.all([store.list('Workload'), store.list('Rollout')]);
    const rolloutOf = new Map(rollouts.items.map((r) => [r.metadata.name, r]));
    return { items: items.filter(includes).map((a) => withNodeStates(a, workloads.items, undefined, rolloutOf.get(a.metadata.name))), resourceVersion: revision };
  });

  api.post('/apps', { schema: { body: AppInputSchema, response: { '2xx': AppSchema } } }, async (request, reply) => {
    const created = await store.create(appFromInput(request.body, false));
    return reply.code(201).send(created);
  });

  api.get('/apps/:name', { schema: { params: NameParams, response: { '2xx': AppSchema } } }, async (request) => {
    const found = await getOrNotFound(store, 'App', request.params.name);
    const [workloads, nodes, rollout] = await Promise.all([store.list('Workload'), store.list('Node'), store.get('Rollout', found.metadata.name)]);
    return withNodeStates(found, workloads.items, nodes.items, rollout);
  });

  api.put('/apps/:name', { schema: { params: NameParams, body: AppInputSchema, response: { '2xx': AppSchema } } }, async (request) => {
    const bodyName = request.body.metadata.name;
    if (bodyName !== request.params.name) {
      throw new ApiError(400, `metadata.name: "${bodyName}" does not match "${request.params.name}" in the path`, 'metadata.name');
    }
    return store.update(appFromInput(request.body, true));
  });

  api.delete('/apps/:name', { schema: { params: NameParams, response: { '2xx': AppSchema } } }, async (request) =>
    store.delete('App', request.params.name));
}
