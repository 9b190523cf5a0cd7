import type { Client } from 'aedes';
import type { MapperDeviceState } from '../../../protocol/index.js';
import { connectedDevice, type Principal } from './deviceAcl.js';

/**
 * Who each MQTT connection is, and what makes each device online: one of its own connections
 * (a session takeover briefly makes two), or a connected mapper saying it reaches the device
 * over its field protocol (`mapper/state`). A device is online while at least one of those holds.
 */
export class ClientRegistry {
  private readonly principals = new WeakMap<Client, Principal>();
  private readonly live = new Map<Client, Principal>();
  /** Per device: its own live connections plus the mappers that reach it. */
  private readonly perDevice = new Map<string, number>();
  /** Per mapper connection: the devices it says it reaches. They end with the connection. */
  private readonly mapperReaches = new Map<Client, Set<string>>();
  /**
   * What a mapper said between its CONNACK and aedes' `clientReady` (the broker reads the
   * client's packets while it still restores a persistent session): held, applied when ready.
   */
  private readonly heldWords = new WeakMap<Client, Map<string, MapperDeviceState>>();
  /** Per device: why a mapper last said it cannot reach it, and which connection said so. */
  private readonly mapperErrors = new Map<string, { client: Client; error: string }>();

  /** Records who a client authenticated as (before its CONNACK). */
  authenticated(client: Client, principal: Principal): void {
    this.principals.set(client, principal);
  }

  principalOf(client: Client): Principal | undefined {
    return this.principals.get(client);
  }

  /** A client finished connecting; returns the device that just came online, if any. */
  ready(client: Client, isDevice: (name: string) => boolean): string | null {
    const principal = this.principals.get(client);
    if (principal === undefined) return null;
    this.live.set(client, principal);
    const device = connectedDevice(principal);
    if (device === null || !isDevice(device)) return null;
    return this.up(device) ? device : null;
  }

  /** True while a connection with this client id is live. */
  hasLiveId(clientId: string): boolean {
    for (const client of this.live.keys()) if (client.id === clientId) return true;
    return false;
  }

  /** True between the client's `clientReady` and its going. */
  isLive(client: Client): boolean {
    return this.live.has(client);
  }

  /** Keeps a not yet ready mapper's newest word per device, for takeHeldWords() once it is ready. */
  holdWord(client: Client, device: string, state: MapperDeviceState): void {
    let held = this.heldWords.get(client);
    if (held === undefined) this.heldWords.set(client, held = new Map());
    held.set(device, state);
  }

  takeHeldWords(client: Client): [string, MapperDeviceState][] {
    const held = this.heldWords.get(client);
    this.heldWords.delete(client);
    return held === undefined ? [] : [...held];
  }

  /** A client went away; returns the devices that went offline with it (a mapper's: several). */
  gone(client: Client): string[] {
    const principal = this.live.get(client);
    if (principal === undefined) return [];
    this.live.delete(client);
    const offline: string[] = [];
    const device = connectedDevice(principal);
    if (device !== null && this.perDevice.has(device) && this.down(device)) offline.push(device);
    for (const reached of this.mapperReaches.get(client) ?? []) if (this.down(reached)) offline.push(reached);
    this.mapperReaches.delete(client);
    return offline;
  }

  /**
   * A live mapper connection says whether it reaches `device`; returns the device's new
   * online state when that changed, else null.
   */
  mapperSays(client: Client, device: string, reachable: boolean, error?: string): boolean | null {
    if (!this.live.has(client)) return null;
    if (reachable) this.mapperErrors.delete(device);
    else if (error !== undefined) this.mapperErrors.set(device, { client, error });
    let reaches = this.mapperReaches.get(client);
    if (reachable === (reaches?.has(device) ?? false)) return null;
    if (reachable) {
      if (reaches === undefined) this.mapperReaches.set(client, reaches = new Set());
      reaches.add(device);
      return this.up(device) ? true : null;
    }
    reaches!.delete(device);
    return this.down(device) ? false : null;
  }

  /** The device left the node (or changed protocol, so its mapper no longer serves it): mappers' word on it ends. */
  forgetMapperState(device: string): boolean {
    this.mapperErrors.delete(device);
    let wentOffline = false;
    for (const reaches of this.mapperReaches.values()) {
      if (reaches.delete(device) && this.down(device)) wentOffline = true;
    }
    return wentOffline;
  }

  /** Connected clients whose principal matches. */
  clientsWhere(match: (principal: Principal) => boolean): Client[] {
    return [...this.live].filter(([, principal]) => match(principal)).map(([client]) => client);
  }

  /** True while the device has a connection or a mapper reaching it. */
  isOnline(device: string): boolean {
    return this.perDevice.has(device);
  }

  /** Why the device's mapper last said it cannot reach it; undefined once one reaches it. */
  mapperError(device: string): string | undefined {
    return this.mapperErrors.get(device)?.error;
  }

  /**
   * The reasons a mapper connection gave, taken back when it goes (what it said holds only while
   * it is there to say it); returns the devices that had one.
   */
  dropMapperErrors(client: Client): string[] {
    const dropped: string[] = [];
    for (const [device, { client: sayer }] of this.mapperErrors) {
      if (sayer !== client) continue;
      this.mapperErrors.delete(device);
      dropped.push(device);
    }
    return dropped;
  }

  /** Devices online now. */
  onlineDevices(): string[] {
    return [...this.perDevice.keys()];
  }

  clear(): void {
    this.live.clear();
    this.perDevice.clear();
    this.mapperReaches.clear();
    this.mapperErrors.clear();
  }

  /** One more reason for the device to be online; true when it is the first. */
  private up(device: string): boolean {
    const count = (this.perDevice.get(device) ?? 0) + 1;
    this.perDevice.set(device, count);
    return count === 1;
  }

  /** One reason fewer; true when it was the last. */
  private down(device: string): boolean {
    const count = this.perDevice.get(device);
    if (count === undefined) return false;
    if (count > 1) {
      this.perDevice.set(device, count - 1);
      return false;
    }
    this.perDevice.delete(device);
    return true;
  }
}
