import { z } from 'zod';
import { LabelSelectorSchema } from './labels.js';
import { APP_TOPIC_ROOT, AppGrantStatusSchema, topicFilterProblem, topicNameProblem } from './mqttFilters.js';
import { NameSchema, ObjectMetaSchema } from './objectMeta.js';

/**
 * Routes: chosen local MQTT traffic of a node forwarded to the cloud or to an operator's MQTT
 * broker (docs/edge-data.md, "Routes"). An operator declares a `Route` (fleet-wide, with a node
 * selector, like an App); cloudcore binds it to each selected node as a `NodeRoute` object
 * (`<route>.<node>`, one node's copy with its Secret resolved), the way Apps become Workloads,
 * so a node's link session only ever reads objects bound to that node.
 */

// ---- topic filters (pure) -------------------------------------------------------------------

/** Longest topic filter a route accepts (MQTT allows 65535 bytes; a route never needs that). */
export const MAX_ROUTE_FILTER_LENGTH = 1024;

/** A route's filter: a valid MQTT filter (mqttFilters.ts) of bounded length. */
function routeFilterProblem(filter: string): string | null {
  if (filter.length > MAX_ROUTE_FILTER_LENGTH) return `must be at most ${MAX_ROUTE_FILTER_LENGTH} characters`;
  return topicFilterProblem(filter);
}

/** A topic a route or an operator publishes on: a valid MQTT topic name of bounded length. */
function routeTopicProblem(topic: string): string | null {
  if (topic.length > MAX_ROUTE_FILTER_LENGTH) return `must be at most ${MAX_ROUTE_FILTER_LENGTH} characters`;
  return topicNameProblem(topic);
}

export const TopicFilterSchema = z.string().superRefine((filter, ctx) => {
  const problem = routeFilterProblem(filter);
  if (problem) ctx.addIssue({ code: 'custom', message: `"${filter.slice(0, 80)}" is not a valid MQTT topic filter: ${problem}` });
});

const TopicPrefixSchema = z.string().max(512).superRefine((prefix, ctx) => {
  if (prefix !== '' && routeTopicProblem(prefix) !== null) ctx.addIssue({ code: 'custom', message: 'must be a topic name without "+", "#" or NUL' });
});

// ---- Route spec -----------------------------------------------------------------------------

export const RouteLimitsSchema = z.strictObject({
  /** Forwarding pace; faster bursts wait in the queue (they are not dropped for it). */
  maxMessagesPerSecond: z.number().int().min(1).max(100_000).default(100),
  /** A bigger message is refused at the edge, counted as `oversized` and named in a log line. */
  maxMessageBytes: z.number().int().min(1).max(1024 * 1024).default(64 * 1024),
  /** Queue bound on the edge (count); when full the OLDEST queued message is dropped (`queueFull`). */
  maxQueuedMessages: z.number().int().min(1).max(1_000_000).default(10_000),
  /** Queue bound on the edge (payload bytes), enforced like maxQueuedMessages. */
  maxQueuedBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(64 * 1024 * 1024),
});
export type RouteLimits = z.infer<typeof RouteLimitsSchema>;

export const CloudDestinationSchema = z.strictObject({ type: z.literal('cloud') });

export const SecretKeyRefSchema = z.strictObject({ name: NameSchema, key: z.string().min(1).max(253) });

export const MqttDestinationSchema = z.strictObject({
  type: z.literal('mqtt'),
  /** `mqtts://host:port` (TLS, the server certificate verified); `mqtt://` only with `allowPlaintext`. */
  url: z.string().max(2048),
  /** Plain MQTT (no TLS): credentials and data travel in clear. The edge logs a warning for every such route. */
  allowPlaintext: z.boolean().default(false),
  /** Forwarded topic = topicPrefix + local topic (e.g. `site-7/` + `apps/alerts/fire`). */
  topicPrefix: TopicPrefixSchema.default(''),
  clientId: z.string().min(1).max(128).optional(),
  username: z.string().min(1).max(256).optional(),
  /** The password, from a Secret the cloud resolves when it binds the route to a node. */
  passwordSecret: SecretKeyRefSchema.optional(),
  /** PEM of the CA(s) the broker's certificate must chain to; without it, the system's CAs. */
  ca: z.string().max(64 * 1024).optional(),
}).superRefine((d, ctx) => {
  let url: URL;
  try {
    url = new URL(d.url);
  } catch {
    ctx.addIssue({ code: 'custom', path: ['url'], message: `"${d.url.slice(0, 80)}" is not a URL (expected mqtts://host:port)` });
    return;
  }
  if (url.protocol !== 'mqtts:' && url.protocol !== 'mqtt:') {
    ctx.addIssue({ code: 'custom', path: ['url'], message: `scheme "${url.protocol}" is not supported; use mqtts:// (or mqtt:// with allowPlaintext)` });
  } else if (url.protocol === 'mqtt:' && !d.allowPlaintext) {
    ctx.addIssue({ code: 'custom', path: ['url'], message: 'mqtt:// sends data and password in clear: use mqtts://, or set allowPlaintext: true to accept that' });
  }
  if (url.hostname === '') ctx.addIssue({ code: 'custom', path: ['url'], message: 'has no host' });
  if (url.username !== '' || url.password !== '') ctx.addIssue({ code: 'custom', path: ['url'], message: 'must not carry credentials: use username and passwordSecret' });
  if (d.passwordSecret !== undefined && d.username === undefined) ctx.addIssue({ code: 'custom', path: ['username'], message: 'is required with passwordSecret' });
});

export const RouteDestinationSchema = z.discriminatedUnion('type', [CloudDestinationSchema, MqttDestinationSchema]);
export type RouteDestination = z.infer<typeof RouteDestinationSchema>;
export type MqttDestination = z.infer<typeof MqttDestinationSchema>;

export const RouteSpecSchema = z.strictObject({
  /** The nodes the route runs on, as for Apps; an empty selector selects every node. */
  selector: LabelSelectorSchema.default({}),
  source: z.strictObject({
    /** Local topic filters on the node's broker (`ef/devices/+/telemetry`, `apps/alerts/#`). */
    topics: z.array(TopicFilterSchema).min(1).max(32),
  }),
  destination: RouteDestinationSchema,
  limits: RouteLimitsSchema.prefault({}),
});
export type RouteSpec = z.infer<typeof RouteSpecSchema>;

// ---- counters (edge → cloud, edgectl, status pages) -----------------------------------------

export const RouteDropReasonSchema = z.enum(['queueFull', 'oversized']);
export type RouteDropReason = z.infer<typeof RouteDropReasonSchema>;

export const RouteCountersSchema = z.strictObject({
  route: NameSchema,
  destination: z.enum(['cloud', 'mqtt']),
  /** Messages on the node's broker that matched the route's filters. */
  matched: z.number().int().nonnegative(),
  /** Accepted into the durable queue. */
  queued: z.number().int().nonnegative(),
  /** Confirmed by the destination (cloud ack, or the broker's PUBACK). */
  forwarded: z.number().int().nonnegative(),
  dropped: z.strictObject({ queueFull: z.number().int().nonnegative(), oversized: z.number().int().nonnegative() }),
  queueDepth: z.number().int().nonnegative(),
  queueBytes: z.number().int().nonnegative(),
  /** Whether the destination is reachable now. */
  connected: z.boolean(),
  lastError: z.string().nullable(),
  lastForwardedAt: z.string().nullable(),
});
export type RouteCounters = z.infer<typeof RouteCountersSchema>;

export const RouteNodeStatusSchema = RouteCountersSchema.omit({ route: true }).extend({ node: NameSchema, observedAt: z.string() });

// ---- Route (operator-facing) and NodeRoute (bound to one node) ------------------------------

export const RouteSchema = z.strictObject({
  kind: z.literal('Route'),
  metadata: ObjectMetaSchema,
  spec: RouteSpecSchema,
  status: z.strictObject({
    /** The nodes the route is bound to, with the counters each last reported. */
    nodes: z.array(RouteNodeStatusSchema.partial().extend({ node: NameSchema })),
  }).optional(),
});
export type Route = z.infer<typeof RouteSchema>;

/** A route's name: no "." (its bindings are `<route>.<node>`, and node names may hold dots). */
export const RouteNameSchema = NameSchema.refine((name) => !name.includes('.'),
  'a route name cannot contain "." (its node bindings are named <route>.<node>, and node names may contain dots)');

export const RouteInputSchema = z.strictObject({
  apiVersion: z.string().optional(),
  kind: z.literal('Route').optional(),
  metadata: ObjectMetaSchema.extend({ name: RouteNameSchema }),
  spec: RouteSpecSchema,
  status: z.unknown().optional(),
});
export type RouteInput = z.infer<typeof RouteInputSchema>;

export const NodeRouteSchema = z.strictObject({
  kind: z.literal('NodeRoute'),
  metadata: ObjectMetaSchema,
  spec: z.strictObject({
    nodeName: NameSchema,
    route: NameSchema,
    source: RouteSpecSchema.shape.source,
    destination: RouteDestinationSchema,
    limits: RouteLimitsSchema,
    /** The destination password read from its Secret; `missing` names a Secret or key not there (the route reports it). */
    resolved: z.strictObject({ password: z.string().optional(), missing: z.array(z.string()) }),
  }),
  status: RouteCountersSchema.omit({ route: true }).extend({ observedAt: z.string() }).optional(),
});
export type NodeRoute = z.infer<typeof NodeRouteSchema>;

export function nodeRouteName(route: string, node: string): string {
  return `${route}.${node}`;
}

// ---- link frames ----------------------------------------------------------------------------

/** Most messages in one `routed` frame. */
export const MAX_ROUTED_PER_FRAME = 500;

export const RoutedMessageSchema = z.strictObject({
  /** Per route on this node, strictly increasing: the cloud stores each (node, route, seq) once. */
  seq: z.number().int().positive(),
  topic: z.string().min(1).max(MAX_ROUTE_FILTER_LENGTH),
  /** base64 of the MQTT payload. */
  payload: z.string().max(2 * 1024 * 1024),
  /** When the edge's broker received it (edge clock, ISO). */
  t: z.string().max(64),
});
export type RoutedMessage = z.infer<typeof RoutedMessageSchema>;

/** edge → cloud: messages of one cloud route, oldest first. */
export const RoutedFrameSchema = z.strictObject({
  type: z.literal('routed'),
  route: NameSchema,
  /** The route's queue on the edge, created with it: seqs count within one stream (a re-created route or a new edge database starts another). */
  stream: z.string().min(8).max(64),
  messages: z.array(RoutedMessageSchema).min(1).max(MAX_ROUTED_PER_FRAME),
});
export type RoutedFrame = z.infer<typeof RoutedFrameSchema>;

/** edge → cloud: the node's route counters (on change, at most every few seconds). */
export const RouteStatusFrameSchema = z.strictObject({
  type: z.literal('routeStatus'),
  routes: z.array(RouteCountersSchema).max(1000),
  /**
   * The node's app identities and their counters, in the same periodic frame: they change with
   * the same local traffic and are only shown, so they need no frame of their own. Absent from
   * an edge older than app grants (a cloud older than it drops the field).
   */
  appGrants: z.array(AppGrantStatusSchema).max(1000).optional(),
  /** App grants left out of `appGrants` to keep the frame within its byte budget (edgecore/devices/apps/grantReport.ts). */
  appGrantsOmitted: z.number().int().nonnegative().optional(),
});

/** cloud → edge: cumulative, every message of `route` with seq ≤ `seq` is stored in the cloud. */
export const RoutedAckFrameSchema = z.strictObject({ type: z.literal('routedAck'), route: NameSchema, seq: z.number().int().nonnegative() });

/** Operator publishes reach only the application namespace of a node's broker. */

/** cloud → edge: publish into the node's broker (operator `POST /nodes/{node}/publish`). */
export const PublishRequestFrameSchema = z.strictObject({
  type: z.literal('publishRequest'),
  id: z.string().min(1).max(64),
  topic: z.string().min(1).max(MAX_ROUTE_FILTER_LENGTH),
  payload: z.string().max(2 * 1024 * 1024),
  qos: z.union([z.literal(0), z.literal(1)]),
  retain: z.boolean(),
});
export type PublishRequestFrame = z.infer<typeof PublishRequestFrameSchema>;

/** edge → cloud: the answer to a publishRequest. */
export const PublishResultFrameSchema = z.strictObject({
  type: z.literal('publishResult'), id: z.string().min(1).max(64), error: z.string().max(4096).optional(),
});

/** Why an operator may not publish to `topic` on a node, or null. */
export function operatorPublishProblem(topic: string): string | null {
  const problem = routeTopicProblem(topic);
  if (problem) return problem;
  if (!topic.startsWith(`${APP_TOPIC_ROOT}/`) || topic.length === APP_TOPIC_ROOT.length + 1) {
    return `must be under "${APP_TOPIC_ROOT}/" (operators publish only into the application namespace)`;
  }
  return null;
}

/** Body of `POST /nodes/{node}/publish`. `payload` is text (UTF-8) unless `encoding` is base64. */
export const NodePublishRequestSchema = z.strictObject({
  topic: z.string().superRefine((topic, ctx) => {
    const problem = operatorPublishProblem(topic);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  payload: z.string().max(1024 * 1024),
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
  qos: z.union([z.literal(0), z.literal(1)]).default(1),
  retain: z.boolean().default(false),
});
export type NodePublishRequest = z.infer<typeof NodePublishRequestSchema>;

/** One stored routed message, as `GET /routes/{name}/messages` returns it. */
export const StoredRoutedMessageSchema = z.strictObject({
  node: NameSchema, seq: z.number().int().positive(), topic: z.string(),
  payload: z.string(), encoding: z.enum(['utf8', 'base64']), t: z.string(), receivedAt: z.string(),
  /** Position in the cloud's store: pass as `after` to read on. */
  id: z.number().int().positive(),
});
export const RoutedMessageListSchema = z.strictObject({ items: z.array(StoredRoutedMessageSchema), next: z.number().int().nonnegative() });
export const RouteListSchema = z.strictObject({ items: z.array(RouteSchema), resourceVersion: z.number().int().nonnegative() });
