import type { FastifyInstance } from 'fastify';
import { WorkloadListSchema } from '../../../protocol/index.js';
import type { Workload } from '../../../protocol/index.js';
import { present } from '../views/present.js';
import type { ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { WorkloadListQuery, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

/** Workloads are written by the scheduler and the edges; operators only read them. */
export async function workloadRoutes(app: FastifyInstance, { store, watches }: ResourceRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/workloads', { schema: { querystring: WorkloadListQuery, response: { '2xx': WorkloadListSchema } } }, async (request, reply) => {
    const { node, app: appName, watch, resourceVersion } = request.query;
    const includes = (w: Workload) =>
      (node === undefined || w.spec.nodeName === node) && (appName === undefined || w.spec.app === appName);
    if (watch) return watches.serve(reply, { kind: 'Workload', node, fromRevision: resourceVersion, includes });
    const { items, revision } = await store.list('Workload', { node });
    return { items: items.filter(includes).map(present), resourceVersion: revision };
  });
}
