import type { AuditRecord, OperatorRole } from '../../protocol/index.js';

/**
 * What one audit line says about one request: pure, so the rules (which requests are audited,
 * what their target and verb are) are tested without a server. The fastify hook that feeds it
 * is api/plumbing/auditHook.ts; the file it goes to is auditFile.ts.
 */

export interface AuditInput {
  time: Date;
  requestId: string;
  method: string;
  /** The matched route's pattern (`/api/v1/nodes/:name`); undefined when no route matched. */
  route: string | undefined;
  params: unknown;
  /** The parsed body, read only for the target's name (`metadata.name`, `name`, `node`). */
  body: unknown;
  status: number;
  sourceAddress: string;
  /** Who the token belongs to, when it was verified (set before the role check: a 403 is named). */
  principal: { tokenId: string; tokenName: string; role: OperatorRole } | undefined;
  /** Whether the request carried an Authorization header at all (an unverified one is "unknown"). */
  hadAuthorization: boolean;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Reads that reach into a workload on a node: audited like writes. */
const AUDITED_READ_VERBS = new Set(['exec', 'logs']);
const API_PREFIX = '/api/v1';

/** Route collection → the kind of object it holds. */
const KIND_OF_COLLECTION: Record<string, string> = {
  nodes: 'Node', apps: 'App', workloads: 'Workload', rollouts: 'Rollout', revisions: 'AppRevision',
  configs: 'Config', secrets: 'Secret', devicemodels: 'DeviceModel', devices: 'Device', events: 'Event',
  tokens: 'JoinToken', operatortokens: 'OperatorToken', audit: 'AuditLog', fleet: 'Fleet', unreadable: 'Unreadable', routes: 'Route',
};

type Target = NonNullable<AuditRecord['target']>;

function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' && key in value ? (value as Record<string, unknown>)[key] : undefined;
}

function stringField(value: unknown, key: string): string | undefined {
  const v = field(value, key);
  return typeof v === 'string' ? v : undefined;
}

interface RouteShape {
  /** Each `collection/:param` pair of the route, in order. */
  pairs: Target[];
  /** Literal segments after the last parameter (`exec`, `rollout/pause`), or all of them when there is none. */
  trailing: string[];
}

/** Reads a route pattern against its params: `/nodes/:name/workloads/:workload/exec` → Node, Workload; trailing `exec`. */
export function routeShape(route: string, params: unknown): RouteShape {
  const segments = (route.startsWith(API_PREFIX) ? route.slice(API_PREFIX.length) : route).split('/').filter(Boolean);
  const pairs: Target[] = [];
  let trailing: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.startsWith(':')) continue; // consumed with the literal before it
    let kind = KIND_OF_COLLECTION[segment] ?? segment;
    let name: string | undefined;
    let consumed = false;
    // `/unreadable/:kind/:name`: a `:kind` parameter names the kind itself.
    while (segments[i + 1]?.startsWith(':')) {
      const param = segments[++i]!.slice(1);
      const value = stringField(params, param) ?? null;
      if (param === 'kind' && value !== null) kind = value;
      else name = value ?? undefined;
      consumed = true;
    }
    if (consumed) {
      pairs.push({ kind, name: name ?? null });
      trailing = [];
    } else {
      trailing.push(segment);
    }
  }
  return { pairs, trailing };
}

/** The object a request acts on: the route's last `collection/:name`, else its collection and the body's name. */
export function auditTarget(route: string, params: unknown, body: unknown): Target | null {
  const { pairs, trailing } = routeShape(route, params);
  const last = pairs[pairs.length - 1];
  if (!last) {
    const collection = trailing[0];
    if (collection === undefined) return null;
    const name = stringField(field(body, 'metadata'), 'name') ?? stringField(body, 'name') ?? null;
    const node = stringField(body, 'node');
    return { kind: KIND_OF_COLLECTION[collection] ?? collection, name, ...(node ? { node } : {}) };
  }
  const node = pairs.find((p) => p.kind === 'Node');
  return node && node !== last && node.name ? { ...last, node: node.name } : { ...last };
}

/** create, update, patch, delete; for a POST or GET on a sub-route its last word (exec, logs, pause, credentials). */
export function auditVerb(method: string, route: string, params: unknown): string {
  const { pairs, trailing } = routeShape(route, params);
  const action = pairs.length > 0 ? trailing[trailing.length - 1] : undefined;
  if (action && (method === 'POST' || method === 'GET' || method === 'HEAD')) return action;
  switch (method) {
    case 'POST': return 'create';
    case 'PUT': return 'update';
    case 'PATCH': return 'patch';
    case 'DELETE': return 'delete';
    default: return pairs.length > 0 ? 'get' : 'list';
  }
}

/** The audit line for a request, or undefined when the request is not audited (reads that succeeded, unknown routes). */
export function buildAuditRecord(input: AuditInput): AuditRecord | undefined {
  if (input.route === undefined) return undefined;
  const verb = auditVerb(input.method, input.route, input.params);
  const refused = input.status === 401 || input.status === 403;
  if (!MUTATING.has(input.method) && !AUDITED_READ_VERBS.has(verb) && !refused) return undefined;
  const who = input.principal;
  return {
    time: input.time.toISOString(),
    requestId: input.requestId,
    tokenId: who?.tokenId ?? null,
    tokenName: who?.tokenName ?? (input.hadAuthorization ? 'unknown' : 'anonymous'),
    role: who?.role ?? null,
    method: input.method,
    verb,
    route: input.route,
    target: auditTarget(input.route, input.params, input.body),
    status: input.status,
    sourceAddress: input.sourceAddress,
  };
}
