import type { FastifyInstance } from 'fastify';
import { TokenRequestSchema, TokenResponseSchema } from '../../../protocol/index.js';
import { mintJoinToken } from '../../hub/credentials.js';
import type { ResourceRoutesOptions } from '../plumbing/routeContext.js';
import type { ZodTypeProvider } from '../plumbing/zodSchemas.js';

/** Join tokens: shown once, at creation; the store keeps only a hash, and they are never listed. */
/** `pin`: the CA bundle's hash, carried by every token while cloudcore serves HTTPS (null over plain HTTP). */
/** `advertisedUrl`: where edges reach cloudcore (its first advertise address), answered beside the token for the join command. */
export async function tokenRoutes(app: FastifyInstance, { store, pin, advertisedUrl }: ResourceRoutesOptions & { pin: string | null; advertisedUrl?: (() => string | undefined) | undefined }): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/tokens', { schema: { body: TokenRequestSchema, response: { '2xx': TokenResponseSchema } } }, async (request, reply) => {
    const { node, ttlSeconds } = request.body;
    const { token, expiresAt } = await mintJoinToken(store, node, ttlSeconds, pin);
    const cloudUrl = advertisedUrl?.();
    return reply.code(201).send({ token, node, expiresAt, ...(cloudUrl !== undefined ? { cloudUrl } : {}) });
  });
}
