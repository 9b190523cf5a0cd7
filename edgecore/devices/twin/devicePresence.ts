import type { Client } from 'aedes';
import { deviceTopics, type Device, type MapperDeviceState } from '../../../protocol/index.js';
import type { ClientRegistry } from '../broker/clientRegistry.js';
import type { GroupCommit } from '../groupCommit.js';
import type { BrokerPublisher } from '../broker/publisher.js';
import { RetryLater } from '../retryLater.js';
import { statusMessage } from './twinEngine.js';
import type { TwinLedger } from './twinLedger.js';

/** After a failed commit, an online/offline change is tried again this much later. */
export const PRESENCE_RETRY_MS = 1_000;

export interface DevicePresenceDeps {
  commit: GroupCommit;
  twins: TwinLedger;
  clients: ClientRegistry;
  publisher: BrokerPublisher;
  devices: () => ReadonlyMap<string, Device>;
  info: (obj: object, msg: string) => void;
}

/**
 * Whether each device is online: recorded in its twin (and sent upstream with it) in the hub's
 * group commit, then published retained on `ef/devices/<id>/status` once committed.
 */
export class DevicePresence {
  /**
   * A rolled-back change would leave the twin (and the retained status) saying what is no
   * longer true until the device's next connect or disconnect, which for a device that went
   * away may be never. So it is tried again, a second later, for as long as it fails.
   */
  private readonly retry = new RetryLater(PRESENCE_RETRY_MS, (name) => this.retryChange(name));

  constructor(private readonly deps: DevicePresenceDeps) {}

  /** The device's first connection came up, or its last one went away. */
  changed(name: string, online: boolean): void {
    this.deps.commit.add(() => this.mark(name, online), (err) => this.onCommitted(name, err));
  }

  /** A mapper says whether it reaches the device (`mapper/state`): presence and offline reason follow. */
  fromMapper(client: Client, name: string, state: MapperDeviceState): void {
    const { clients } = this.deps;
    if (!clients.isLive(client)) return clients.holdWord(client, name, state);
    const reasonBefore = clients.mapperError(name);
    const online = clients.mapperSays(client, name, state.reachable, state.error);
    const reasonChanged = reasonBefore !== clients.mapperError(name);
    if (online === null && !reasonChanged) return;
    this.deps.info({ device: name, clientId: client.id, reachable: state.reachable, error: state.error }, 'device state from its mapper');
    if (online !== null) this.changed(name, online);
    // Offline before and after, with a new reason (never reached since the mapper started, say).
    else this.reasonChanged(name);
  }

  /** The device left its mappers' protocol: what they said of it (reachable, or why not) no longer counts. */
  mapperWordEnds(name: string): void {
    const hadReason = this.deps.clients.mapperError(name) !== undefined;
    if (this.deps.clients.forgetMapperState(name)) this.changed(name, false);
    else if (hadReason) this.reasonChanged(name);
  }

  /** An offline device's reason changed (or went with its mapper): the twin goes upstream again to carry it. */
  reasonChanged(name: string): void {
    this.deps.commit.add(() => {
      const device = this.deps.devices().get(name);
      if (device !== undefined && this.deps.twins.get(name)?.online === false) this.deps.twins.report(device);
    });
  }

  /** In a transaction: records the device on- or offline; returns the status publish for after the commit. */
  mark(name: string, online: boolean): (() => void) | undefined {
    const device = this.deps.devices().get(name);
    const twin = this.deps.twins.get(name);
    if (device === undefined || twin === undefined) return undefined;
    const at = new Date().toISOString();
    this.deps.twins.put(name, { ...twin, online, lastSeen: at });
    this.deps.twins.report(device);
    return () => this.publish(name, online, at);
  }

  /** Rows left online by a run that did not close cleanly: nobody is connected to a fresh broker. */
  announceStaleOffline(): void {
    const { twins } = this.deps;
    const at = new Date().toISOString();
    const stale = twins.names().filter((name) => twins.get(name)!.online);
    if (stale.length === 0) return;
    this.deps.commit.now(() => {
      for (const name of stale) twins.put(name, { ...twins.get(name)!, online: false });
      return () => { for (const name of stale) this.publish(name, false, at); };
    });
  }

  /** Pending retries are dropped (the hub is closing: it announces every device offline itself). */
  stop(): void {
    this.retry.stop();
  }

  private onCommitted(name: string, err: Error | null): void {
    if (err !== null) this.retry.add(name);
  }

  /** Records the device's presence as it is now (it may have changed again since the failure). */
  private retryChange(name: string): void {
    this.deps.commit.add(() => {
      const online = this.deps.clients.isOnline(name);
      return this.deps.twins.get(name)?.online === online ? undefined : this.mark(name, online);
    }, (err) => this.onCommitted(name, err));
  }

  private publish(name: string, online: boolean, at: string): void {
    this.deps.publisher.publishJson(deviceTopics(name).status, statusMessage(online, at), { qos: 1, retain: true });
  }
}
