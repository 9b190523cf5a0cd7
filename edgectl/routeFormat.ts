import type { Route, RouteCounters } from '../protocol/index.js';
import type { Row } from './format.js';

/** How routes and their counters read in a terminal (edgectl get routes, edgectl local status). */

export const ROUTE_COLUMNS = ['NAME', 'SOURCE', 'DESTINATION', 'NODES'];

export function routeRow(r: Route): Row {
  const d = r.spec.destination;
  const destination = d.type === 'cloud' ? 'cloud' : `${d.url}${d.topicPrefix ? ` (prefix ${d.topicPrefix})` : ''}`;
  return [r.metadata.name, r.spec.source.topics.join(','), destination, String(r.status?.nodes.length ?? 0)];
}

export const ROUTE_COUNTER_COLUMNS = ['NODE/ROUTE', 'DESTINATION', 'CONNECTED', 'MATCHED', 'FORWARDED', 'QUEUED', 'DROPPED (FULL/OVERSIZED)', 'LAST ERROR'];

type Counters = Partial<Omit<RouteCounters, 'route'>>;

export function routeCounterRow(name: string, c: Counters): Row {
  const num = (n: number | undefined) => (n === undefined ? '-' : String(n));
  const dropped = c.dropped ? `${c.dropped.queueFull}/${c.dropped.oversized}` : '-';
  return [
    name, c.destination ?? '-', c.connected === undefined ? '-' : c.connected ? 'yes' : 'no',
    num(c.matched), num(c.forwarded), num(c.queueDepth), dropped, c.lastError ?? '',
  ];
}
