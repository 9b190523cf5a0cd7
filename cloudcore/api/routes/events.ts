import type { FastifyInstance } from 'fastify';
import { EventListSchema } from '../../../protocol/index.js';
import type { ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { EventListQuery, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

/** Events reported by edges, in the order the cloud stored them (newest last). */
export async function eventRoutes(app: FastifyInstance, { store }: ResourceRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/events', { schema: { querystring: EventListQuery, response: { '2xx': EventListSchema } } }, async (request) => {
    const { node, limit } = request.query;
    const { items } = await store.list('Event', { node });
    const ordered = [...items].sort((a, b) => (a.metadata.resourceVersion ?? 0) - (b.metadata.resourceVersion ?? 0));
    return { items: ordered.slice(-limit) };
  });
}
