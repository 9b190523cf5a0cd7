import type { FastifyInstance } from 'fastify';
import {
  CreatedOperatorTokenSchema, OperatorTokenListSchema, OperatorTokenRequestSchema, OperatorTokenViewSchema,
} from '../../../protocol/index.js';
import { requireAdmin } from '../plumbing/auth.js';
import type { ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { NameParams, type ZodTypeProvider } from '../plumbing/zodSchemas.js';
import { mintOperatorToken, operatorTokenView, revokeOperatorToken } from '../rules/operatorTokens.js';

/**
 * `/operatortokens`: named operator tokens, admin-only (reads included: the list says who may
 * act). The token is in the create answer only; lists never carry it or its hash.
 */
export async function operatorTokenRoutes(app: FastifyInstance, { store }: ResourceRoutesOptions): Promise<void> {
  app.addHook('onRequest', requireAdmin);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/operatortokens', { schema: { body: OperatorTokenRequestSchema, response: { '2xx': CreatedOperatorTokenSchema } } }, async (request, reply) => {
    const { token, view } = await mintOperatorToken(store, request.body);
    return reply.code(201).send({ ...view, token });
  });

  api.get('/operatortokens', { schema: { response: { '2xx': OperatorTokenListSchema } } }, async () => {
    const { items } = await store.list('OperatorToken');
    return { items: items.map(operatorTokenView) };
  });

  api.delete('/operatortokens/:name', { schema: { params: NameParams, response: { '2xx': OperatorTokenViewSchema } } },
    async (request) => revokeOperatorToken(store, request.params.name));
}
