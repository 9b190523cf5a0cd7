import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { deviceTopics, parseDeviceTopic, type MapperDeviceState, type PropertyValue } from '../../protocol/index.js';
import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { deviceFingerprint, diffDevices, fetchDeviceList, type MapperDevice } from './deviceList.js';
import { DeviceWorker, type DeviceHealth } from './deviceWorker.js';
import type { ProtocolDriver } from './driver.js';
import { errorMessage, withTimeout } from './timeout.js';

export interface MapperLoopOptions {
  /** The protocol this mapper serves (`virtual`, `modbus`, `opcua`); asks the edge for those devices only. */
  protocol: string;
  node: string;
  /** Edgecore's local API, e.g. http://127.0.0.1:10350. */
  edgeUrl: string;
  /** The edge broker, e.g. mqtt://127.0.0.1:1883. */
  mqttUrl: string;
  /** The mapper password: bearer token for the device list and MQTT password. */
  password: string;
  driver: ProtocolDriver;
  log: Logger;
  /** How often to re-fetch the device list (default 30). */
  refreshSeconds?: number;
  backoff?: BackoffPolicy;
  /** Failed operations in a row after which a device connection is re-opened (default 3). */
  maxConsecutiveFailures?: number;
  connectTimeoutMs?: number;
  operationTimeoutMs?: number;
  /** Also publish each report as a telemetry sample `{t, values}` (default false). */
  telemetry?: boolean;
}

export interface MapperStatus {
  protocol: string;
  node: string;
  mqtt: { connected: boolean; consecutiveFailures: number; lastError: string | null };
  deviceList: { lastFetchAt: string | null; lastError: string | null; consecutiveFailures: number; rejected: { name: string; reason: string }[] };
  devices: DeviceHealth[];
}

interface RunningDevice {
  worker: DeviceWorker;
  fingerprint: string;
}

/**
 * The mapper: fetches the devices the edge assigns to this protocol, runs one DeviceWorker per
 * device, and connects them to the edge broker (reported out; desired and delta in).
 */
export class MapperLoop {
  private readonly devices = new Map<string, RunningDevice>();
  private readonly log: Logger;
  private readonly backoff: BackoffPolicy;
  private client: MqttClient | null = null;
  private mqttFailures = 0;
  private mqttLastError: string | null = null;
  /** Devices removed while MQTT was down; their subscriptions are dropped at the next connect. */
  private readonly staleSubscriptions = new Set<string>();
  private listTimer: NodeJS.Timeout | null = null;
  private listFailures = 0;
  private listLastError: string | null = null;
  private listFetchedAt: string | null = null;
  private listRejected: { name: string; reason: string }[] = [];
  private refreshing: Promise<void> | null = null;
  /** What each device's worker last said of its connection (sent as `mapper/state`). */
  private readonly reachability = new Map<string, MapperDeviceState>();
  private stopped = false;

  constructor(private readonly opts: MapperLoopOptions) {
    this.log = opts.log.child({ protocol: opts.protocol });
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
  }

  get clientId(): string {
    return `mapper-${this.opts.protocol}-${this.opts.node}`;
  }

  /** Connects to the broker (in the background) and makes the first device-list attempt. */
  async start(): Promise<void> {
    this.startMqtt();
    await this.refreshNow();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.listTimer) clearTimeout(this.listTimer);
    await this.refreshing;
    await Promise.all([...this.devices.values()].map((d) => d.worker.stop()));
    this.devices.clear();
    const client = this.client;
    this.client = null;
    if (!client) return;
    // Connected: a clean DISCONNECT after in-flight QoS 1 messages are acked (bounded). Not
    // connected: waiting for acks would never end, so close at once.
    const ended = client.connected ? withTimeout(client.endAsync(false), 3000, 'mqtt disconnect') : client.endAsync(true);
    await ended.catch((err: unknown) => {
      this.log.debug({ err: errorMessage(err) }, 'mqtt end failed');
      client.stream?.destroy();
    });
  }

  status(): MapperStatus {
    return {
      protocol: this.opts.protocol,
      node: this.opts.node,
      mqtt: { connected: this.client?.connected ?? false, consecutiveFailures: this.mqttFailures, lastError: this.mqttLastError },
      deviceList: { lastFetchAt: this.listFetchedAt, lastError: this.listLastError, consecutiveFailures: this.listFailures, rejected: this.listRejected },
      devices: [...this.devices.values()].map((d) => d.worker.health()).sort((a, b) => a.name.localeCompare(b.name)),
    };
  }

  /** Fetches the device list now and starts/stops/restarts workers to match it. */
  refreshNow(): Promise<void> {
    this.refreshing ??= this.refresh().finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  // ---- device list ---------------------------------------------------------------------------

  private async refresh(): Promise<void> {
    if (this.stopped) return;
    if (this.listTimer) clearTimeout(this.listTimer);
    const periodMs = (this.opts.refreshSeconds ?? 30) * 1000;
    let nextMs = periodMs;
    try {
      const list = await fetchDeviceList(this.opts.edgeUrl, this.opts.protocol, this.opts.password);
      if (this.stopped) return;
      if (list.node !== this.opts.node) this.log.warn({ edgeNode: list.node }, `the edge says it is node "${list.node}", this mapper was started for "${this.opts.node}"`);
      for (const r of list.rejected) this.log.warn({ device: r.name }, `device skipped: ${r.reason}`);
      this.listRejected = list.rejected;
      this.listFailures = 0;
      this.listLastError = null;
      this.listFetchedAt = new Date().toISOString();
      await this.reconcile(list.devices);
    } catch (err) {
      this.listFailures += 1;
      this.listLastError = errorMessage(err);
      // Retry sooner than a full period while failing (the edge may just be starting), never later.
      nextMs = Math.min(periodMs, backoffDelayMs(this.listFailures, this.backoff));
      this.log.warn({ failures: this.listFailures, retryInMs: nextMs, err: this.listLastError }, 'cannot fetch the device list; keeping the devices already running');
    }
    if (!this.stopped) this.listTimer = setTimeout(() => void this.refreshNow(), nextMs);
  }

  private async reconcile(next: MapperDevice[]): Promise<void> {
    const running = new Map([...this.devices].map(([name, d]) => [name, d.fingerprint]));
    const { added, removed, changed } = diffDevices(running, next);
    for (const name of removed) {
      this.log.info({ device: name }, 'device removed');
      await this.stopDevice(name);
      this.unsubscribe(name);
    }
    for (const device of changed) {
      this.log.info({ device: device.name }, 'device changed; restarting it');
      await this.stopDevice(device.name);
      this.startDevice(device);
      this.subscribe([device.name]); // again, so the retained desired reaches the new worker
    }
    for (const device of added) {
      this.log.info({ device: device.name, properties: device.properties.length }, 'device added');
      this.startDevice(device);
      this.subscribe([device.name]);
    }
  }

  private startDevice(device: MapperDevice): void {
    const worker = new DeviceWorker(device, {
      driver: this.opts.driver,
      log: this.log,
      backoff: this.backoff,
      maxConsecutiveFailures: this.opts.maxConsecutiveFailures ?? 3,
      connectTimeoutMs: this.opts.connectTimeoutMs ?? 10_000,
      operationTimeoutMs: this.opts.operationTimeoutMs ?? 5_000,
      report: (name, properties) => this.publishReport(name, properties),
      reachability: (name, reachable, error) => this.setReachability(name, reachable, error),
    });
    this.devices.set(device.name, { worker, fingerprint: deviceFingerprint(device) });
    this.staleSubscriptions.delete(device.name);
    worker.start();
  }

  private async stopDevice(name: string): Promise<void> {
    const running = this.devices.get(name);
    if (!running) return;
    this.devices.delete(name);
    await running.worker.stop();
    // No longer served here: the edge must not go on counting it online on our word.
    if (this.reachability.delete(name)) this.publishReachability(name, { reachable: false, error: 'the mapper stopped serving the device' });
  }

  /** Tells the edge when a device's connection comes up or goes (it counts the device online meanwhile). */
  private setReachability(name: string, reachable: boolean, error: string | null): void {
    const state: MapperDeviceState = error === null ? { reachable } : { reachable, error: error.slice(0, 1024) };
    const before = this.reachability.get(name);
    this.reachability.set(name, state);
    // A retry that fails the same way says nothing new; a different error (refused, then no
    // route) does, so the edge and the cloud show why the device is offline now.
    if (before?.reachable !== reachable || before.error !== state.error) this.publishReachability(name, state);
  }

  private publishReachability(name: string, state: MapperDeviceState): void {
    const client = this.client;
    if (!client?.connected) return; // onConnect sends every device's state
    client.publish(deviceTopics(name).mapperState, JSON.stringify(state), { qos: 1 }, (err) => {
      if (err) this.log.warn({ device: name, err: errorMessage(err) }, 'publishing the device state failed');
    });
  }

  // ---- MQTT ----------------------------------------------------------------------------------

  private startMqtt(): void {
    const client = mqtt.connect(this.opts.mqttUrl, {
      clientId: this.clientId,
      username: `mapper-${this.opts.protocol}`,
      password: this.opts.password,
      protocolVersion: 4,
      // A persistent session keeps our subscriptions, and QoS 1 deltas queue at the broker while we are away.
      clean: false,
      // We subscribe ourselves on every connect (see onConnect), whatever the broker remembered.
      resubscribe: false,
      reconnectPeriod: backoffDelayMs(1, this.backoff),
      // A refused CONNACK (say the edge has not provisioned the mapper password yet) is retried too.
      reconnectOnConnackError: true,
      connectTimeout: 10_000,
      keepalive: 30,
    });
    this.client = client;
    client.on('connect', (connack) => this.onConnect(client, connack.sessionPresent));
    // mqtt.js retries at a fixed `reconnectPeriod`, read each time it arms its retry timer;
    // raising it on every attempt turns that into exponential back-off with jitter.
    client.on('reconnect', () => {
      this.mqttFailures += 1;
      client.options.reconnectPeriod = backoffDelayMs(this.mqttFailures + 1, this.backoff);
    });
    client.on('error', (err) => {
      this.mqttLastError = errorMessage(err);
      this.log.warn({ err: this.mqttLastError, failures: this.mqttFailures }, 'mqtt error');
    });
    client.on('offline', () => this.log.warn({ lastError: this.mqttLastError }, 'mqtt disconnected; reconnecting with back-off'));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  private onConnect(client: MqttClient, sessionPresent: boolean): void {
    this.log.info({ sessionPresent, afterFailures: this.mqttFailures, clientId: this.clientId }, 'mqtt connected');
    this.mqttFailures = 0;
    this.mqttLastError = null;
    client.options.reconnectPeriod = backoffDelayMs(1, this.backoff);
    if (this.staleSubscriptions.size > 0) {
      client.unsubscribe([...this.staleSubscriptions].flatMap((name) => this.topicsOf(name)));
      this.staleSubscriptions.clear();
    }
    this.subscribe([...this.devices.keys()]);
    // Reports made while offline were not sent: publish every current value again. The edge
    // forgot what we said of the devices' reachability when our last connection ended.
    for (const d of this.devices.values()) d.worker.forgetReported();
    for (const [name, state] of this.reachability) this.publishReachability(name, state);
  }

  private topicsOf(name: string): string[] {
    const t = deviceTopics(name);
    return [t.desired, t.delta, t.errors];
  }

  private subscribe(names: string[]): void {
    const client = this.client;
    if (!client?.connected || names.length === 0) return; // onConnect subscribes everything
    client.subscribe(names.flatMap((n) => this.topicsOf(n)), { qos: 1 }, (err) => {
      if (err) this.log.warn({ err: errorMessage(err), devices: names }, 'mqtt subscribe failed');
    });
  }

  private unsubscribe(name: string): void {
    const client = this.client;
    if (client?.connected) client.unsubscribe(this.topicsOf(name));
    else this.staleSubscriptions.add(name);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    const running = parsed ? this.devices.get(parsed.device) : undefined;
    if (!parsed || !running) return;
    let body: unknown;
    try {
      body = payload.length === 0 ? null : JSON.parse(payload.toString('utf8'));
    } catch {
      this.log.warn({ device: parsed.device, topic }, 'ignoring a message that is not JSON');
      return;
    }
    if (body === null) {
      // The edge clears a device's retained desired when the device leaves the node: stop
      // serving it now rather than at the next periodic refresh.
      if (parsed.rest === 'twin/desired') void this.refreshNow();
      return;
    }
    if (parsed.rest === 'twin/desired') running.worker.handleTwinMessage('desired', body);
    else if (parsed.rest === 'twin/delta') running.worker.handleTwinMessage('delta', body);
    else if (parsed.rest === 'errors') this.log.warn({ device: parsed.device, edgeError: body }, 'the edge refused a message of this device');
  }

  private publishReport(device: string, properties: Record<string, PropertyValue>): boolean {
    const client = this.client;
    if (!client?.connected) return false;
    const topics = deviceTopics(device);
    client.publish(topics.reported, JSON.stringify({ properties }), { qos: 1 }, (err) => {
      if (err) this.log.warn({ device, err: errorMessage(err) }, 'publishing reported failed');
    });
    if (this.opts.telemetry) {
      client.publish(topics.telemetry, JSON.stringify({ t: new Date().toISOString(), values: properties }), { qos: 0 });
    }
    return true;
  }
}
