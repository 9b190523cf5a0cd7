import type { FastifyInstance } from 'fastify';
import { matchesSelector, NodePatchSchema, NodeRevokeAnswerSchema, type Node, NodeListSchema, NodeSchema } from '../../../protocol/index.js';
import { notFoundMessage } from '../../store/objectMeta.js';
import { readModifyWrite } from '../../store/readModifyWrite.js';
import { NotFoundError, type Store } from '../../store/store.js';
import type { FleetLinks } from '../views/fleetView.js';
import { mergeLabelPatch } from '../rules/labelPatch.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { NameParams, SelectableListQuery, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

/** Without a client resourceVersion, a label patch re-reads and retries when a concurrent write (e.g. a heartbeat) wins. */
const PATCH_ATTEMPTS = 5;

/**
 * A node as read now: for a connected node, `status.lastSeen` is the hub's last frame from it.
 * The stored value is written at most once a minute (each write is a store revision every
 * watcher hears), so on its own it reads up to a minute old for a node that is plainly there.
 */
export function withLiveLastSeen(node: Node, live: number | undefined): Node {
  if (live === undefined) return node;
  const stored = node.status.lastSeen ? Date.parse(node.status.lastSeen) : 0;
  if (live <= stored) return node;
  return { ...node, status: { ...node.status, lastSeen: new Date(live).toISOString() } };
}

export async function nodeRoutes(app: FastifyInstance, { store, watches, links }: ResourceRoutesOptions & { links?: Pick<FleetLinks, 'liveLastSeen'> }): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const live = (node: Node) => withLiveLastSeen(node, links?.liveLastSeen(node.metadata.name));

  api.get('/nodes', { schema: { querystring: SelectableListQuery, response: { '2xx': NodeListSchema } } }, async (request, reply) => {
    const { labelSelector, watch, resourceVersion } = request.query;
    const includes = (node: Node) => !labelSelector || matchesSelector(labelSelector, node.metadata.labels);
    if (watch) return watches.serve(reply, { kind: 'Node', fromRevision: resourceVersion, includes });
    const { items, revision } = await store.list('Node');
    return { items: items.filter(includes).map(live), resourceVersion: revision };
  });

  api.get('/nodes/:name', { schema: { params: NameParams, response: { '2xx': NodeSchema } } }, async (request) =>
    live(await getOrNotFound(store, 'Node', request.params.name)));

  api.patch('/nodes/:name', { schema: { params: NameParams, body: NodePatchSchema, response: { '2xx': NodeSchema } } }, async (request) => {
    const { labels, resourceVersion } = request.body.metadata;
    const name = request.params.name;
    return readModifyWrite(store, 'Node', name, (node): Node => {
      const merged = mergeLabelPatch(node.metadata.labels, labels);
      const { labels: _previous, ...metadata } = node.metadata;
      return { ...node, metadata: Object.keys(merged).length > 0 ? { ...metadata, labels: merged } : metadata };
    }, { attempts: PATCH_ATTEMPTS, expectedVersion: resourceVersion, absent: () => new NotFoundError(notFoundMessage('Node', name)) });
  });

  // Revoking keeps the node, its labels and its workloads; it ends its identity. The hub closes
  // the live link when the credential goes (it watches them), and the edge needs a new join token.
  api.post('/nodes/:name/revoke', { schema: { params: NameParams, response: { '2xx': NodeRevokeAnswerSchema } } }, async (request) => {
    const name = request.params.name;
    await getOrNotFound(store, 'Node', name);
    try {
      await store.delete('NodeCredential', name);
      return { node: name, revoked: true };
    } catch (err) {
      if (err instanceof NotFoundError) return { node: name, revoked: false };
      throw err;
    }
  });

  api.delete('/nodes/:name', { schema: { params: NameParams, response: { '2xx': NodeSchema } } }, async (request) => {
    const name = request.params.name;
    const deleted = await store.delete('Node', name);
    await deleteNodeLeftovers(store, name);
    return deleted;
  });
}

/**
 * What belongs to a deleted node: its credential (so the edge can no longer connect), its
 * join tokens (so an unused one cannot bring the name back), and its Workloads (the scheduler
 * would remove them too, but the operator should see the result at once).
 */
export async function deleteNodeLeftovers(store: Store, node: string): Promise<void> {
  await deleteIfPresent(store, 'NodeCredential', node);
  const tokens = await store.list('JoinToken');
  for (const token of tokens.items) {
    if (token.spec.node === node) await deleteIfPresent(store, 'JoinToken', token.metadata.name);
  }
  const workloads = await store.list('Workload', { node });
  for (const workload of workloads.items) await deleteIfPresent(store, 'Workload', workload.metadata.name);
}

async function deleteIfPresent(store: Store, kind: 'NodeCredential' | 'JoinToken' | 'Workload', name: string): Promise<void> {
  try {
    await store.delete(kind, name);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err; // removed concurrently: fine
  }
}
