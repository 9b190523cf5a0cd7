import type { AppGrantStatus } from '../protocol/index.js';
import type { Row } from './format.js';

/** How app grants and their counters read in a terminal (edgectl local status, edgectl get node). */

export const APP_GRANT_COLUMNS = ['WORKLOAD', 'USERNAME', 'PUBLISH', 'SUBSCRIBE', 'PUBLISHED', 'DELIVERED', 'REFUSED'];

export function appGrantRow(g: AppGrantStatus): Row {
  const filters = (list: string[]) => (list.length === 0 ? '-' : list.join(','));
  return [g.workload, g.username, filters(g.publish), filters(g.subscribe), String(g.published), String(g.delivered), String(g.refused)];
}
