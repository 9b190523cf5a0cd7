import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  matchesSelector, NameSchema, NodeAppGrantsSchema, NodePublishRequestSchema, RouteInputSchema, RouteListSchema, RouteSchema, RoutedMessageListSchema,
  type NodeRoute, type Route, type RouteInput,
} from '../../../protocol/index.js';
import type { RouteTraffic } from '../../hub/routeTraffic.js';
import type { Store } from '../../store/store.js';
import type { RoutedMessages } from '../../telemetry/routedMessages.js';
import { ApiError } from '../plumbing/errors.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { NameParams, SelectableListQuery, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

/** What the routes API needs from the hub; without it the messages and publish routes answer 503. */
export interface RouteApiDeps {
  traffic?: RouteTraffic;
  messages?: RoutedMessages;
}

const MessagesQuery = z.strictObject({
  /** Read on after this id (the `next` of the previous page). */
  after: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  node: NameSchema.optional(),
});

const PublishAnswerSchema = z.strictObject({ published: z.literal(true), node: z.string(), topic: z.string() });

function routeFromInput(input: RouteInput, keepResourceVersion: boolean): Route {
  const { name, labels, annotations, resourceVersion } = input.metadata;
  const metadata: Route['metadata'] = { name };
  if (labels !== undefined) metadata.labels = labels;
  if (annotations !== undefined) metadata.annotations = annotations;
  if (keepResourceVersion && resourceVersion !== undefined) metadata.resourceVersion = resourceVersion;
  return { kind: 'Route', metadata, spec: input.spec };
}

/** A route with its nodes (its NodeRoutes) and the counters each last reported. */
function withStatus(route: Route, bindings: readonly NodeRoute[], traffic: RouteTraffic | undefined): Route {
  const counters = traffic?.countersOf(route.metadata.name);
  const nodes = bindings.filter((b) => b.spec.route === route.metadata.name).map((b) => {
    const seen = counters?.get(b.spec.nodeName);
    return seen ? { node: b.spec.nodeName, ...seen.counters, observedAt: seen.observedAt } : { node: b.spec.nodeName };
  });
  return { ...route, status: { nodes } };
}

async function bindingsOf(store: Store): Promise<NodeRoute[]> {
  return (await store.list('NodeRoute')).items;
}

/**
 * `/routes`: chosen local MQTT traffic of nodes forwarded to the cloud or an operator's broker
 * (docs/edge-data.md, "Routes"); `/routes/{r}/messages`: what cloud routes delivered, in order;
 * `/nodes/{n}/publish`: an operator's message into a node's broker, application topics only;
 * `/nodes/{n}/grants`: the node's app grants and their counters as it last reported them.
 */
export async function dataRoutes(app: FastifyInstance, { store, watches, traffic, messages }: ResourceRoutesOptions & RouteApiDeps): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/routes', { schema: { querystring: SelectableListQuery, response: { '2xx': RouteListSchema } } }, async (request, reply) => {
    const { labelSelector, watch, resourceVersion } = request.query;
    const includes = (r: Route) => !labelSelector || matchesSelector(labelSelector, r.metadata.labels);
    if (watch) return watches.serve(reply, { kind: 'Route', fromRevision: resourceVersion, includes });
    const { items, revision } = await store.list('Route');
    const bindings = await bindingsOf(store);
    return { items: items.filter(includes).map((r) => withStatus(r, bindings, traffic)), resourceVersion: revision };
  });

  api.post('/routes', { schema: { body: RouteInputSchema, response: { '2xx': RouteSchema } } }, async (request, reply) =>
    reply.code(201).send(await store.create(routeFromInput(request.body, false))));

  api.get('/routes/:name', { schema: { params: NameParams, response: { '2xx': RouteSchema } } }, async (request) =>
    withStatus(await getOrNotFound(store, 'Route', request.params.name), await bindingsOf(store), traffic));

  api.put('/routes/:name', { schema: { params: NameParams, body: RouteInputSchema, response: { '2xx': RouteSchema } } }, async (request) => {
    const bodyName = request.body.metadata.name;
    if (bodyName !== request.params.name) throw new ApiError(400, `metadata.name: "${bodyName}" does not match "${request.params.name}" in the path`, 'metadata.name');
    return store.update(routeFromInput(request.body, true));
  });

  api.delete('/routes/:name', { schema: { params: NameParams, response: { '2xx': RouteSchema } } }, async (request) =>
    store.delete('Route', request.params.name));

  api.get('/routes/:name/messages', { schema: { params: NameParams, querystring: MessagesQuery, response: { '2xx': RoutedMessageListSchema } } }, async (request) => {
    if (!messages) throw new ApiError(503, 'routed messages are not stored by this cloudcore');
    const { after, limit, node } = request.query;
    const items = messages.list(request.params.name, { after, limit, ...(node !== undefined ? { node } : {}) }).map((m) => {
      const text = m.payload.toString('utf8');
      const isText = Buffer.from(text, 'utf8').equals(m.payload);
      return { id: m.id, node: m.node, seq: m.seq, topic: m.topic, payload: isText ? text : m.payload.toString('base64'), encoding: isText ? 'utf8' as const : 'base64' as const, t: m.t, receivedAt: m.receivedAt };
    });
    return { items, next: items.length > 0 ? items[items.length - 1]!.id : after };
  });

  // In this replica's memory, like a node's link statistics: the replica holding its link has them.
  api.get('/nodes/:name/grants', { schema: { params: NameParams, response: { '2xx': NodeAppGrantsSchema } } }, async (request) => {
    const node = (await getOrNotFound(store, 'Node', request.params.name)).metadata.name;
    const seen = traffic?.grantsOf(node);
    return seen ? { node, observedAt: seen.observedAt, items: seen.items, omitted: seen.omitted } : { node, observedAt: null, items: [], omitted: 0 };
  });

  api.post('/nodes/:name/publish', { schema: { params: NameParams, body: NodePublishRequestSchema, response: { '2xx': PublishAnswerSchema } } }, async (request) => {
    if (!traffic) throw new ApiError(503, 'this cloudcore does not carry publishes to nodes');
    await getOrNotFound(store, 'Node', request.params.name);
    await traffic.publish(request.params.name, request.body);
    return { published: true as const, node: request.params.name, topic: request.body.topic };
  });
}
