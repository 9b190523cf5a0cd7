import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { KINDS, NameSchema, type Kind, UnreadableDeletedSchema, UnreadableListSchema } from '../../../protocol/index.js';
import type { TelemetryStore } from '../../telemetry/telemetryStore.js';
import { deleteNodeLeftovers } from './nodes.js';
import type { ResourceRoutesOptions } from '../plumbing/routeContext.js';
import type { ZodTypeProvider } from '../plumbing/zodSchemas.js';

/** Any kind, written as the API names it (App) or as edgectl does (app, apps). */
const KindParam = z.string().transform((given, ctx): Kind => {
  const wanted = given.toLowerCase().replace(/s$/, '');
  const kind = KINDS.find((k) => k.toLowerCase() === wanted);
  if (kind) return kind;
  ctx.addIssue({ code: 'custom', message: `unknown kind "${given}"; one of ${KINDS.join(', ')}` });
  return z.NEVER;
});

const UnreadableParams = z.strictObject({ kind: KindParam, name: NameSchema });

/**
 * The way out for an object the store holds but cannot read (every read of it answers 500
 * naming it): `DELETE /unreadable/{kind}/{name}` removes it, and only it; a readable object is
 * refused with 409, so this cannot bypass the checks of the kind's own delete.
 */
export async function unreadableRoutes(app: FastifyInstance, opts: ResourceRoutesOptions & { telemetry?: TelemetryStore }): Promise<void> {
  const { store, telemetry } = opts;
  const api = app.withTypeProvider<ZodTypeProvider>();

  // Everything to repair at once; the reads that fail name only what they touch.
  api.get('/unreadable', { schema: { response: { '2xx': UnreadableListSchema } } }, async () => ({ items: await store.listUnreadable() }));

  api.delete('/unreadable/:kind/:name', { schema: { params: UnreadableParams, response: { '2xx': UnreadableDeletedSchema } } }, async (request) => {
    const { kind, name } = request.params;
    const { revision } = await store.deleteUnreadable(kind, name);
    // What the kind's own delete also removes: a device's telemetry (re-created under this name
    // it starts without history); a node's credential, join tokens and workloads (else the
    // edge could still connect as a node that no longer exists).
    if (kind === 'Device') await telemetry?.drop(name);
    if (kind === 'Node') await deleteNodeLeftovers(store, name);
    request.log.warn({ kind, name, revision }, 'unreadable object deleted');
    return { kind, name, deleted: true as const, resourceVersion: revision };
  });
}
