import type { AppGrantStatus } from '../../../protocol/index.js';

/**
 * The app grants' share of a `routeStatus` frame, in bytes of JSON. The link refuses a frame over
 * MAX_FRAME_BYTES by closing the connection, so a node with many grants with long filters must
 * not send them all: with the route counters (at most 1000, a few hundred bytes each) this keeps
 * the frame well under 1 MiB.
 */
export const APP_GRANT_REPORT_BYTES = 256 * 1024;

/**
 * The grants that fit in `budgetBytes`, in the order given (by workload name), and how many were
 * left out. Pure; whole entries only, so what the cloud shows is true as far as it goes.
 */
export function fitAppGrants(grants: readonly AppGrantStatus[], budgetBytes = APP_GRANT_REPORT_BYTES): { appGrants: AppGrantStatus[]; omitted: number } {
  const appGrants: AppGrantStatus[] = [];
  let used = 2; // the array's brackets
  for (const grant of grants) {
    const size = Buffer.byteLength(JSON.stringify(grant)) + 1; // and its comma
    if (used + size > budgetBytes || appGrants.length === 1000) break;
    used += size;
    appGrants.push(grant);
  }
  return { appGrants, omitted: grants.length - appGrants.length };
}
