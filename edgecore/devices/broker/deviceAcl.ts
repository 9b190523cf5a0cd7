import { MAPPER_STATE_SUFFIX, TOPIC_ROOT, parseDeviceTopic, type MqttGrant } from '../../../protocol/index.js';

/**
 * Who an MQTT client is and which topics it may use (docs/mqtt.md, "Access rules"). Pure
 * functions over the set of devices on this node; deviceHub.ts calls them from aedes' hooks.
 */

export type Principal =
  /**
   * Logged in as a device: username = device name, password checked against its credentialHash;
   * or by its client certificate, whose serial is kept so revoking it ends this connection.
   */
  | { kind: 'device'; device: string; certificateSerial?: string }
  /** A mapper: acts for every device of one protocol on this node. */
  | { kind: 'mapper'; username: string; protocol: string }
  /** No username, only when anonymous access is allowed: acts as the device named by its client id. */
  | { kind: 'anonymous'; clientId: string }
  /** A workload's own credential (`app-<workload>`): only the topics of its grant (appAcl.ts). */
  | { kind: 'app'; username: string; workload: string; grant: MqttGrant }
  /** No username on a broker in general-purpose mode: the topic space outside `ef/` and `apps/` (appAcl.ts). */
  | { kind: 'general'; clientId: string };

/** The devices on this node, by name → protocol name. */
export type DeviceDirectory = ReadonlyMap<string, string>;

/** What a device (or its mapper) may publish, below `ef/devices/<id>/`. */
export const DEVICE_PUBLISH_SUFFIXES: readonly string[] = ['twin/reported', 'twin/get', 'telemetry'];

const [ROOT_LEVEL_0, ROOT_LEVEL_1] = TOPIC_ROOT.split('/');

/** True when the principal may act for the device. */
export function actsFor(principal: Principal, device: string, devices: DeviceDirectory): boolean {
  const protocol = devices.get(device);
  if (protocol === undefined) return false;
  switch (principal.kind) {
    case 'device': return principal.device === device;
    case 'anonymous': return principal.clientId === device;
    case 'mapper': return principal.protocol === protocol;
    case 'app': case 'general': return false;
  }
}

/** The device a connection stands for (for online/offline), or null for a mapper. */
export function connectedDevice(principal: Principal): string | null {
  switch (principal.kind) {
    case 'device': return principal.device;
    case 'anonymous': return principal.clientId;
    case 'mapper': case 'app': case 'general': return null;
  }
}

/** Who the client is, as log fields: `device` for a device, `mapper` and `protocol` for a mapper, `app` and `workload` for an app. */
export function principalLogFields(principal: Principal | undefined): Record<string, string> {
  if (principal === undefined) return {};
  if (principal.kind === 'mapper') return { mapper: principal.username, protocol: principal.protocol };
  if (principal.kind === 'app') return { app: principal.username, workload: principal.workload };
  if (principal.kind === 'general') return { generalClient: principal.clientId };
  return { device: connectedDevice(principal)! };
}

export function mayPublish(principal: Principal, topic: string, devices: DeviceDirectory): boolean {
  const parsed = parseDeviceTopic(topic);
  return parsed !== null && publishesTo(principal, parsed.rest) && actsFor(principal, parsed.device, devices);
}

/** Whether the principal may publish on `ef/devices/<id>/<rest>` of a device it acts for. */
function publishesTo(principal: Principal, rest: string): boolean {
  // Only a mapper says whether it reaches a device; a device is online by connecting itself.
  return DEVICE_PUBLISH_SUFFIXES.includes(rest) || (rest === MAPPER_STATE_SUFFIX && principal.kind === 'mapper');
}

/**
 * A mapper publishing for a device that is not on this node (any more): its device list is
 * refreshed only every so often, so a device just removed is still served for a while. That
 * is a race, not an intrusion: the message is dropped, and the mapper's connection, which
 * serves its other devices too, is kept.
 */
export function isStaleMapperPublish(principal: Principal, topic: string, devices: DeviceDirectory): boolean {
  if (principal.kind !== 'mapper') return false;
  const parsed = parseDeviceTopic(topic);
  return parsed !== null && !devices.has(parsed.device) && publishesTo(principal, parsed.rest);
}

/**
 * A filter must stay below `ef/devices/<id>/` for a device the principal acts for. A mapper
 * may put `+` in the device level (`ef/devices/+/twin/delta`): it then receives only its own
 * devices' messages, because mayReceive() filters every delivery.
 */
export function maySubscribe(principal: Principal, filter: string, devices: DeviceDirectory): boolean {
  const levels = filter.split('/');
  if (levels.length < 4 || levels[0] !== ROOT_LEVEL_0 || levels[1] !== ROOT_LEVEL_1) return false;
  const device = levels[2]!;
  if (device === '+') return principal.kind === 'mapper';
  if (device === '#' || device.includes('+') || device.includes('#')) return false;
  return actsFor(principal, device, devices);
}

/** Whether a message on `topic` may be delivered to the principal (retained ones included). */
export function mayReceive(principal: Principal, topic: string, devices: DeviceDirectory): boolean {
  const parsed = parseDeviceTopic(topic);
  return parsed !== null && actsFor(principal, parsed.device, devices);
}

/** Client ids that start with this belong to mapper credentials (the mapper SDK uses `mapper-<protocol>-<node>`). */
export const MAPPER_CLIENT_ID_PREFIX = 'mapper-';
/** App credentials are `app-<workload>`, and their client ids that or `app-<workload>-<suffix>`. */
export const APP_CLIENT_ID_PREFIX = 'app-';

/**
 * An app may use its username or `<username>-<suffix>` as client id; a general-purpose client
 * any id that no device, mapper or app owns. Never a device's: a takeover would end its session.
 */
function appClientIdRefusal(principal: Principal & { kind: 'app' | 'general' }, clientId: string, devices: DeviceDirectory): string | null {
  const owner = clientIdOwner(clientId, devices);
  if (owner !== null && owner === clientId) return `client id "${clientId}" is reserved for device "${owner}"`;
  if (principal.kind === 'app') {
    if (clientId === principal.username || clientId.startsWith(`${principal.username}-`)) return null;
    return `app "${principal.username}" may use client id "${principal.username}" or "${principal.username}-<suffix>", not "${clientId}"`;
  }
  if (owner !== null) return `client id "${clientId}" is reserved for device "${owner}"`;
  if (clientId.startsWith(MAPPER_CLIENT_ID_PREFIX) || clientId.startsWith(APP_CLIENT_ID_PREFIX)) return `client id "${clientId}" is reserved for mappers and apps`;
  return null;
}

/**
 * Client ids are bound to principals, because a second connection with a client id takes over
 * (disconnects) the first, MQTT's rule: a device may use its name or `<name>-<suffix>` (never
 * another device's name, never `mapper-…`); `mapper-…` ids belong to mapper credentials; a
 * mapper may use any id that is not a device's name. Anonymous clients are the device their id
 * names. Null when allowed, else why not.
 */
export function clientIdRefusal(principal: Principal, clientId: string, devices: DeviceDirectory): string | null {
  const device = connectedDevice(principal);
  if (principal.kind === 'app' || principal.kind === 'general') return appClientIdRefusal(principal, clientId, devices);
  if (device === null) {
    if (devices.has(clientId)) return `client id "${clientId}" is reserved for device "${clientId}"`;
    return clientId.startsWith(APP_CLIENT_ID_PREFIX) ? `client id "${clientId}" is reserved for app credentials` : null;
  }
  if (clientId.startsWith(MAPPER_CLIENT_ID_PREFIX)) return `client id "${clientId}" is reserved for mappers`;
  if (clientId === device) return null;
  const owner = clientIdOwner(clientId, devices);
  if (owner !== null && owner !== device) return `client id "${clientId}" is reserved for device "${owner}"`;
  if (principal.kind === 'device' && owner === device) return null;
  return `device "${device}" may use client id "${device}" or "${device}-<suffix>", not "${clientId}"`;
}

/**
 * The device a client id belongs to: the longest device name that the id equals or starts
 * with followed by `-` (so with devices `pump-1` and `pump-1-b`, `pump-1-b-x` is `pump-1-b`'s);
 * null when none.
 */
export function clientIdOwner(clientId: string, devices: DeviceDirectory): string | null {
  if (devices.has(clientId)) return clientId;
  for (let end = clientId.lastIndexOf('-'); end > 0; end = clientId.lastIndexOf('-', end - 1)) {
    const prefix = clientId.slice(0, end);
    if (devices.has(prefix)) return prefix;
  }
  return null;
}
