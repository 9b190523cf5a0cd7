import { APP_TOPIC_ROOT, TOPIC_ROOT, anyCovers, anyMatches, type MqttGrant } from '../../../protocol/index.js';
import { connectedDevice, type Principal } from './deviceAcl.js';

/**
 * Topics beyond the twin contract (docs/mqtt.md, "Application identities and grants" and
 * "General-purpose mode"). Three spaces by first level: `ef/…` is EdgeFleet's contract
 * (deviceAcl.ts decides it, and an app reads parts of it through its grant), `apps/…` is for
 * apps and devices holding a grant, everything else is the general space, open only to
 * general-purpose clients and only when the node enables that mode. Pure functions.
 */

export type TopicSpace = 'contract' | 'apps' | 'general';

const CONTRACT_ROOT = TOPIC_ROOT.split('/')[0]!;

/** The space of a topic or of a filter whose first level is not a wildcard. */
export function topicSpace(topic: string): TopicSpace {
  const first = topic.split('/', 1)[0];
  return first === CONTRACT_ROOT ? 'contract' : first === APP_TOPIC_ROOT ? 'apps' : 'general';
}

/**
 * Whom a persistent session counts against (sessionQuota.ts): its device, or its app identity,
 * whose client ids are `<username>[-<suffix>]` as a device's are; null for mappers and general clients.
 */
export function sessionOwner(principal: Principal): string | null {
  return principal.kind === 'app' ? principal.username : connectedDevice(principal);
}

/** The app identity `username` when `clientId` is one of its ids, else null. */
export function appClientIdOwner(clientId: string, username: string | null): string | null {
  return username !== null && (clientId === username || clientId.startsWith(`${username}-`)) ? username : null;
}

/** What the app ACL needs besides the principal: devices' own grants (looked up live: a narrowed grant applies at once). */
export interface AppAclContext {
  deviceGrant(device: string): MqttGrant | undefined;
}

const grantOf = (principal: Principal, ctx: AppAclContext): MqttGrant | undefined => {
  if (principal.kind === 'app') return principal.grant;
  if (principal.kind === 'device') return ctx.deviceGrant(principal.device);
  if (principal.kind === 'anonymous') return ctx.deviceGrant(principal.clientId);
  return undefined;
};

/**
 * Whether the principal may publish on `topic` outside what deviceAcl.mayPublish allows: an
 * app or device inside its grant's publish filters (which are all below `apps/`), a
 * general-purpose client in the general space (but never as the broker: `$SYS/…`).
 */
export function mayPublishBeyondContract(principal: Principal, topic: string, ctx: AppAclContext): boolean {
  if (principal.kind === 'general') return topicSpace(topic) === 'general' && !topic.startsWith('$SYS/');
  const grant = grantOf(principal, ctx);
  return grant !== undefined && anyMatches(grant.publish, topic);
}

/**
 * Whether the principal may subscribe to `filter` beyond deviceAcl.maySubscribe: when one of
 * its granted filters covers it; a general-purpose client to any filter whose first level is
 * not `ef` or `apps` (`#` too: mayReceiveBeyondContract keeps other spaces out of it).
 */
export function maySubscribeBeyondContract(principal: Principal, filter: string, ctx: AppAclContext): boolean {
  if (principal.kind === 'general') return topicSpace(filter) === 'general';
  const grant = grantOf(principal, ctx);
  return grant !== undefined && anyCovers(grant.subscribe, filter);
}

/**
 * Whether a message may be delivered beyond deviceAcl.mayReceive. Checked on every delivery,
 * retained and queued ones too, so neither a wildcard nor a persistent session's subscription
 * made under an older grant reaches outside the current one.
 */
export function mayReceiveBeyondContract(principal: Principal, topic: string, ctx: AppAclContext): boolean {
  if (principal.kind === 'general') return topicSpace(topic) === 'general';
  const grant = grantOf(principal, ctx);
  return grant !== undefined && anyMatches(grant.subscribe, topic);
}
