import type { FastifyInstance } from 'fastify';
import { TokenRequestSchema, TokenResponseSchema } from '../../../protocol/index.js';
import { mintJoinToken } from '../../hub/credentials.js';
import type { ResourceRoutesOptions } from '../plumbing/routeContext.js';
import type { ZodTypeProvider } from '../plumbing/zodSchemas.js';

/** Join tokens: shown once, at creation; the store keeps only a hash, and they are never listed. */
export async function tokenRoutes(app: FastifyInstance, { store }: ResourceRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/tokens', { schema: { body: TokenRequestSchema, response: { '2xx': TokenResponseSchema } } }, async (request, reply) => {
    const { node, ttlSeconds } = request.body;
    const { token, expiresAt } = await mintJoinToken(store, node, ttlSeconds);
    return reply.code(201).send({ token, node, expiresAt });
  });
}
