import { NodeAppGrantsSchema, RouteListSchema, type NodeAppGrants, type Route } from '../protocol/index.js';
import { ApiError, type ApiClient } from './client.js';
import { formatAge, renderTable } from './format.js';
import { APP_GRANT_COLUMNS, appGrantRow } from './grantFormat.js';
import { ROUTE_COUNTER_COLUMNS, routeCounterRow } from './routeFormat.js';

/**
 * A node's local data flows as the cloud knows them, for `edgectl get node`: its app grants with
 * their counters (GET /nodes/{n}/grants) and the routes bound to it with the counters it last
 * reported (GET /routes). Kept out of client.ts and get.ts, which are big enough.
 */

export interface NodeDataFlows {
  /** null: a cloudcore older than app grants (404 for the path). */
  grants: NodeAppGrants | null;
  /** null: a cloudcore older than routes. */
  routes: Route[] | null;
}

/** 404 from a path this cloudcore does not have yet: that section is left out, the rest still shows. */
async function unlessMissing<T>(pending: Promise<T>): Promise<T | null> {
  try {
    return await pending;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export async function fetchNodeDataFlows(client: ApiClient, node: string): Promise<NodeDataFlows> {
  const [grants, routes] = await Promise.all([
    unlessMissing(client.request(NodeAppGrantsSchema, 'GET', `/api/v1/nodes/${encodeURIComponent(node)}/grants`)),
    unlessMissing(client.request(RouteListSchema, 'GET', '/api/v1/routes')),
  ]);
  return { grants, routes: routes?.items ?? null };
}

/** The APP GRANTS and ROUTES sections of `edgectl get node NAME`. Pure. */
export function renderNodeDataFlows(node: string, flows: NodeDataFlows, now: Date): string {
  const parts: string[] = [];
  const g = flows.grants;
  if (g !== null) {
    if (g.observedAt === null) {
      parts.push('\nAPP GRANTS\nNot reported to this cloudcore since it started (the node is not linked to it, or its edgecore is older than app grants).\n');
    } else {
      const more = g.omitted > 0 ? `, ${g.omitted} more not reported` : '';
      parts.push(`\nAPP GRANTS (${g.items.length}${more}; counters since the node's edgecore started, last report ${formatAge(g.observedAt, now)} ago)\n`);
      parts.push(g.items.length === 0 ? 'No workload on this node has an MQTT grant.\n' : renderTable(APP_GRANT_COLUMNS, g.items.map(appGrantRow)));
    }
  }
  if (flows.routes !== null) {
    const bound = flows.routes.flatMap((r) => (r.status?.nodes ?? []).filter((n) => n.node === node).map((n) => ({ route: r.metadata.name, counters: n })));
    parts.push(`\nROUTES (${bound.length})\n`);
    parts.push(bound.length === 0 ? 'No routes on this node.\n' : renderTable(ROUTE_COUNTER_COLUMNS, bound.map((b) => routeCounterRow(b.route, b.counters))));
  }
  return parts.join('');
}
