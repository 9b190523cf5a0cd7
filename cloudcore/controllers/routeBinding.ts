import { matchesSelector, nodeRouteName, type Node, type NodeRoute, type Route } from '../../protocol/index.js';
import { hasJoined } from './rolloutNodes.js';

/**
 * Pure: the NodeRoute objects the routes ask for. A route is bound to every joined node its
 * selector matches, as `<route>.<node>`, with its destination password read from the Secret it
 * names (a missing Secret or key is named in `resolved.missing`, and the edge shows it as the
 * route's error while its messages wait in the queue).
 */

export type NodeRouteSpec = NodeRoute['spec'];

export function desiredNodeRoutes(routes: readonly Route[], nodes: readonly Node[], secrets: ReadonlyMap<string, Record<string, string>>): Map<string, NodeRouteSpec> {
  const desired = new Map<string, NodeRouteSpec>();
  for (const route of routes) {
    const resolved: NodeRouteSpec['resolved'] = { missing: [] };
    const dest = route.spec.destination;
    if (dest.type === 'mqtt' && dest.passwordSecret) {
      const value = secrets.get(dest.passwordSecret.name)?.[dest.passwordSecret.key];
      if (value === undefined) resolved.missing.push(`secret "${dest.passwordSecret.name}" key "${dest.passwordSecret.key}"`);
      else resolved.password = value;
    }
    for (const node of nodes) {
      if (!hasJoined(node) || !matchesSelector(route.spec.selector, node.metadata.labels)) continue;
      desired.set(nodeRouteName(route.metadata.name, node.metadata.name), {
        nodeName: node.metadata.name, route: route.metadata.name,
        source: route.spec.source, destination: dest, limits: route.spec.limits, resolved,
      });
    }
  }
  return desired;
}

export interface NodeRoutePlan { create: NodeRoute[]; update: NodeRoute[]; remove: NodeRoute[] }

export function planNodeRoutes(desired: ReadonlyMap<string, NodeRouteSpec>, existing: readonly NodeRoute[]): NodeRoutePlan {
  const plan: NodeRoutePlan = { create: [], update: [], remove: [] };
  const seen = new Set<string>();
  for (const current of existing) {
    seen.add(current.metadata.name);
    const want = desired.get(current.metadata.name);
    if (!want) plan.remove.push(current);
    else if (JSON.stringify(current.spec) !== JSON.stringify(want)) plan.update.push({ ...current, spec: want });
  }
  for (const [name, spec] of desired) {
    if (!seen.has(name)) plan.create.push({ kind: 'NodeRoute', metadata: { name, labels: { 'edgefleet.io/route': spec.route } }, spec });
  }
  return plan;
}
