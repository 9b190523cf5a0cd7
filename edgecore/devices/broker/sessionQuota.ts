/**
 * How many persistent sessions (clean: false, with subscriptions) one device may keep on the
 * broker. Each holds a queue of messages on disk while it is away, so a device (or a stolen
 * device password) opening sessions under ever new client ids would fill the disk: 100
 * sessions × 200 `twin/get` gave 20,000 rows and +20 MB in seconds. Pure decision;
 * deviceHub.ts applies it at each persistent login.
 */
export const DEFAULT_MAX_SESSIONS_PER_DEVICE = 2;
/** Unsent messages a persistent session's queue keeps; the oldest go beyond it. */
export const DEFAULT_MAX_QUEUED_PER_SESSION = 1000;

export type SessionQuotaDecision = { ok: true; discard: string[] } | { ok: false; reason: string };

/**
 * `sessions`: the device's stored persistent sessions, oldest first. A login resuming one of
 * them is always let in; a new one is let in when the device stays within `max`, after the
 * oldest sessions that are not connected are discarded to make room; refused when every other
 * session is connected.
 */
export function decideSessionQuota(device: string, clientId: string, sessions: readonly string[], max: number,
  isConnected: (clientId: string) => boolean): SessionQuotaDecision {
  const others = sessions.filter((id) => id !== clientId);
  let excess = others.length + 1 - max;
  const discard: string[] = [];
  for (const id of others) {
    if (excess <= 0) break;
    if (isConnected(id)) continue;
    discard.push(id);
    excess--;
  }
  if (excess > 0) return { ok: false, reason: `device "${device}" already has ${others.length} persistent sessions connected (at most ${max})` };
  return { ok: true, discard };
}

export interface SessionStore {
  sessionsNamed(name: string): string[];
  discardSession(clientId: string): void;
}

/**
 * Applies the decision for a persistent login of `device` under `clientId`: discards the
 * sessions that make room (each logged) and returns why the login is refused, or null.
 * `ownedBy` tells a device's client ids from a longer-named device's (deviceAcl.clientIdOwner).
 */
export function enforceSessionQuota(store: SessionStore, device: string, clientId: string, max: number, opts: {
  ownedBy: (clientId: string) => string | null; isConnected: (clientId: string) => boolean; warn: (obj: object, msg: string) => void;
}): string | null {
  const sessions = store.sessionsNamed(device).filter((id) => opts.ownedBy(id) === device);
  const decision = decideSessionQuota(device, clientId, sessions, max, opts.isConnected);
  if (!decision.ok) return decision.reason;
  for (const id of decision.discard) {
    store.discardSession(id);
    opts.warn({ device, clientId: id, newClientId: clientId, maxSessions: max }, 'persistent session discarded: the device is over its session quota');
  }
  return null;
}
