import type { Client } from 'aedes';
import { connectedDevice, type Principal } from './deviceAcl.js';

/**
 * Who each MQTT connection is, and how many connections stand for each device: a device is
 * online while at least one of its own connections is (a session takeover briefly makes two).
 */
export class ClientRegistry {
  private readonly principals = new WeakMap<Client, Principal>();
  private readonly live = new Map<Client, Principal>();
  private readonly perDevice = new Map<string, number>();

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
    const count = (this.perDevice.get(device) ?? 0) + 1;
    this.perDevice.set(device, count);
    return count === 1 ? device : null;
  }

  /** A client went away; returns the device that just went offline, if any. */
  gone(client: Client): string | null {
    const principal = this.live.get(client);
    if (principal === undefined) return null;
    this.live.delete(client);
    const device = connectedDevice(principal);
    const count = device === null ? undefined : this.perDevice.get(device);
    if (device === null || count === undefined) return null;
    if (count > 1) {
      this.perDevice.set(device, count - 1);
      return null;
    }
    this.perDevice.delete(device);
    return device;
  }

  /** Connected clients whose principal matches. */
  clientsWhere(match: (principal: Principal) => boolean): Client[] {
    return [...this.live].filter(([, principal]) => match(principal)).map(([client]) => client);
  }

  /** True while the device has a connection. */
  isOnline(device: string): boolean {
    return this.perDevice.has(device);
  }

  /** Devices with a connection now. */
  onlineDevices(): string[] {
    return [...this.perDevice.keys()];
  }

  clear(): void {
    this.live.clear();
    this.perDevice.clear();
  }
}
