import { z } from 'zod';
import { TOPIC_ROOT } from './mqttTopics.js';

/**
 * MQTT topic filters for application grants (docs/mqtt.md, "Application identities and grants"):
 * syntax checks, matching and containment as pure functions, and the zod schema of a grant.
 * MQTT 3.1.1 §4.7: `/` separates levels, `+` is one whole level, `#` the whole last level
 * (matching its parent too), and a filter whose first level is a wildcard never matches a
 * topic starting with `$`.
 */

/** Applications talk to each other (and to devices granted it) below `apps/`. */
export const APP_TOPIC_ROOT = 'apps';

/** Below `ef/devices/<id>/`: what an app may read of the twin contract, never write. */
export const APP_READABLE_DEVICE_SUFFIXES: readonly string[] = ['telemetry', 'twin/reported', 'status'];

/** Bounds of one grant: entries per direction and characters per filter. */
export const MAX_GRANT_FILTERS = 32;
export const MAX_GRANT_FILTER_LENGTH = 256;

/** Why `filter` is not a valid MQTT 3.1.1 topic filter, or null. */
export function topicFilterProblem(filter: string): string | null {
  if (filter.length === 0) return 'must not be empty';
  if (filter.includes('\u0000')) return 'must not contain the NUL character';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return '"#" must be a whole level and the last one';
    if (level.includes('+') && level !== '+') return '"+" must be a whole level';
  }
  return null;
}

/** Why `topic` is not a valid PUBLISH topic name, or null. */
export function topicNameProblem(topic: string): string | null {
  if (topic.length === 0) return 'must not be empty';
  if (topic.includes('\u0000')) return 'must not contain the NUL character';
  if (topic.includes('+') || topic.includes('#')) return 'must not contain wildcards';
  return null;
}

/** Whether the concrete `topic` matches `filter` (both assumed valid). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Whether every topic `inner` matches is matched by `outer` too (both valid filters): a
 * subscription is allowed when a granted filter covers it. A topic name is a filter matching
 * only itself, so this decides publishes as well.
 */
export function filterCovers(outer: string, inner: string): boolean {
  const o = outer.split('/');
  const n = inner.split('/');
  // `$x/...` is matched by no filter starting with a wildcard; a wildcard inner first level matches no `$` topic, so no harm there.
  if (n[0]!.startsWith('$') && (o[0] === '+' || o[0] === '#')) return false;
  for (let i = 0; i < n.length; i++) {
    if (o[i] === '#') return true;
    if (o[i] === undefined) return false;
    if (n[i] === '#') return false;
    if (o[i] === '+') continue;
    if (n[i] === '+' || n[i] !== o[i]) return false;
  }
  // `a/#` matches `a` too.
  return o.length === n.length || (o.length === n.length + 1 && o[n.length] === '#');
}

/** Whether some filter of `filters` covers `inner`. */
export function anyCovers(filters: readonly string[], inner: string): boolean {
  return filters.some((f) => filterCovers(f, inner));
}

/** Whether `topic` matches some filter of `filters`. */
export function anyMatches(filters: readonly string[], topic: string): boolean {
  return filters.some((f) => topicMatches(f, topic));
}

export type GrantDirection = 'publish' | 'subscribe';
/** A workload's grant may read parts of the twin contract; a device's grant is app topics only. */
export type GrantHolder = 'workload' | 'device';

const DEVICE_ROOT_LEVELS = TOPIC_ROOT.split('/');

/** Why `filter` may not be in a grant of `holder` for `direction`, or null. */
export function grantFilterProblem(filter: string, direction: GrantDirection, holder: GrantHolder): string | null {
  if (filter.length > MAX_GRANT_FILTER_LENGTH) return `must be at most ${MAX_GRANT_FILTER_LENGTH} characters`;
  const syntax = topicFilterProblem(filter);
  if (syntax !== null) return syntax;
  if (filter.startsWith('$')) return '"$" topics are the broker\'s own';
  const levels = filter.split('/');
  if (levels[0] === APP_TOPIC_ROOT) {
    return levels.length >= 2 ? null : `must name a topic below "${APP_TOPIC_ROOT}/"`;
  }
  const readable = holder === 'workload' && direction === 'subscribe';
  if (levels[0] === DEVICE_ROOT_LEVELS[0]) {
    if (!readable) {
      return holder === 'device'
        ? `must be below "${APP_TOPIC_ROOT}/": a device uses its own twin topics without a grant`
        : `must be below "${APP_TOPIC_ROOT}/": an app changes a device only through its twin (the cloud's desired values), never by publishing on "${TOPIC_ROOT}/"`;
    }
    return deviceReadProblem(levels);
  }
  return readable
    ? `must be below "${APP_TOPIC_ROOT}/", or one of ${APP_READABLE_DEVICE_SUFFIXES.map((s) => `"${TOPIC_ROOT}/+/${s}"`).join(', ')} (a device name or "+" in place of "+")`
    : `must be below "${APP_TOPIC_ROOT}/"`;
}

/** A read grant on the twin contract: `ef/devices/<name or +>/<readable suffix>`, nothing wider. */
function deviceReadProblem(levels: string[]): string | null {
  const [root0, root1, device, ...rest] = levels;
  const readable = `one of ${APP_READABLE_DEVICE_SUFFIXES.map((s) => `"${TOPIC_ROOT}/+/${s}"`).join(', ')} (a device name or "+" in place of "+")`;
  if (root0 !== DEVICE_ROOT_LEVELS[0] || root1 !== DEVICE_ROOT_LEVELS[1] || device === undefined || device === '#' || device === '') {
    return `must be ${readable}: apps read telemetry, reported twins and status, never desired or delta`;
  }
  if (!APP_READABLE_DEVICE_SUFFIXES.includes(rest.join('/'))) {
    return `must be ${readable}: apps read telemetry, reported twins and status, never desired or delta`;
  }
  return null;
}

/** The zod schema of a grant held by `holder`: errors name the entry, e.g. `subscribe[1]: …`. */
export function mqttGrantSchema(holder: GrantHolder) {
  const filters = (direction: GrantDirection) => z.array(z.string()).max(MAX_GRANT_FILTERS).default([])
    .superRefine((list, ctx) => {
      list.forEach((filter, index) => {
        const problem = grantFilterProblem(filter, direction, holder);
        if (problem !== null) ctx.addIssue({ code: 'custom', path: [index], message: `"${filter}" ${problem}` });
      });
    });
  return z.strictObject({ publish: filters('publish'), subscribe: filters('subscribe') });
}

/** A workload's grant: app topics both ways, and reading devices' telemetry, reported twins and status. */
export const WorkloadMqttGrantSchema = mqttGrantSchema('workload');
export type MqttGrant = z.infer<typeof WorkloadMqttGrantSchema>;
/** A device's grant: app topics only (its own twin topics need none). */
export const DeviceMqttGrantSchema = mqttGrantSchema('device');

/** Per app identity on a node's broker: its grant and its message counters (this run of edgecore). */
export const AppGrantStatusSchema = z.strictObject({
  workload: z.string(),
  username: z.string(),
  publish: z.array(z.string()),
  subscribe: z.array(z.string()),
  /** Messages it published that the broker accepted. */
  published: z.number().int().min(0),
  /** Messages delivered to it (one per delivery). */
  delivered: z.number().int().min(0),
  /** Publishes and subscriptions refused, outside its grant. */
  refused: z.number().int().min(0),
});
export type AppGrantStatus = z.infer<typeof AppGrantStatusSchema>;

/** `GET /nodes/{node}/grants`: the node's app grants as it last reported them to this cloudcore. */
export const NodeAppGrantsSchema = z.strictObject({
  node: z.string(),
  /** When this cloudcore last heard them; null: not since it started (or the node is older than app grants). */
  observedAt: z.string().nullable(),
  items: z.array(AppGrantStatusSchema),
  /** Grants the node has beyond `items`, left out of its report to bound the frame; 0 when none. */
  omitted: z.number().int().nonnegative(),
});
export type NodeAppGrants = z.infer<typeof NodeAppGrantsSchema>;
