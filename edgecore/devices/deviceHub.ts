import type { Client, PublishPacket, Subscription } from 'aedes';
import type { RouteBus } from './routes/routeEngine.js';
import { MAPPER_STATE_SUFFIX, deviceTopics, parseDeviceTopic, type Device, type MqttGrant } from '../../protocol/index.js';
import { ClientRegistry } from './broker/clientRegistry.js';
import { DEFAULT_MAX_QUEUED_PER_SESSION, DEFAULT_MAX_SESSIONS_PER_DEVICE, enforceSessionQuota } from './broker/sessionQuota.js';
import { APP_CLIENT_ID_PREFIX, actsFor, clientIdOwner, connectedDevice, isStaleMapperPublish, mayPublish, mayReceive, maySubscribe, principalLogFields, type DeviceDirectory, type Principal } from './broker/deviceAcl.js';
import { CredentialVerifier, parseCredentialHash } from './broker/deviceCredentials.js';
import type { GroupCommit } from './groupCommit.js';
import { CONNACK_SERVER_UNAVAILABLE, authenticateClient, type AuthResult } from './broker/clientAuth.js';
import { startBroker, stopBroker, type RunningBroker } from './broker/mqttBroker.js';
import { deviceForCertificate, presentedCertificate } from './broker/deviceCertificate.js';
import { DEFAULT_BROKER_LIMITS, DEFAULT_TELEMETRY_BATCH, DEFAULT_TWIN_UPSTREAM_INTERVAL_MS, type DeviceHubOptions, type DeviceHubStatus, type HubLogger } from './deviceHubOptions.js';
import { BrokerPublisher } from './broker/publisher.js';
import { DeviceStorage } from './deviceStorage.js';
import { DevicePresence } from './twin/devicePresence.js';
import { RefusedMessages } from './broker/refusedMessages.js';
import { RetryLater } from './retryLater.js';
import { orphanedRetainedTopics } from './broker/retainedSweep.js';
import type { SqlitePersistence } from './persistence/index.js';
import { TelemetryBatcher } from './telemetry/telemetryBatcher.js';
import { applyDeviceMessage, parseMapperState, payloadOf, ReceiveClock, type MessageTargets } from './deviceMessages.js';
import {
  deltaMessage, deltasForSubscriptions, desiredFingerprint, desiredMessage, emptyTwin,
} from './twin/twinEngine.js';
import type { TwinLedger } from './twin/twinLedger.js';
import { AppTraffic } from './apps/appTraffic.js';
import { appClientIdOwner, sessionOwner } from './broker/appAcl.js';

export { DEFAULT_TWIN_UPSTREAM_INTERVAL_MS, type DeviceHubOptions, type DeviceHubStatus, type HubLogger } from './deviceHubOptions.js';

const NOOP_LOGGER: HubLogger = { info: () => {}, warn: () => {} };

/** After a failed commit or retained publish, the device list or the broker's retained state is tried again this much later. */
const RETRY_MS = 1_000;

/**
 * The edge's MQTT broker for devices and mappers (aedes on SQLite persistence) and its twin
 * engine: authenticates clients, confines each to its devices' topics (deviceAcl.ts), keeps the
 * reported sections (twinStore.ts), publishes desired/delta/status, and hands twin reports and
 * telemetry batches to `upstream`. Topic contract: docs/mqtt.md.
 */
export class DeviceHub {
  private readonly logger: HubLogger;
  private readonly storage: DeviceStorage;
  private readonly persistence: SqlitePersistence;
  private readonly twins: TwinLedger;
  /** Every write of the hub goes through it: device messages in batches, the rest with now(). */
  private readonly commit: GroupCommit;
  private readonly messageTargets: MessageTargets;
  private readonly clock = new ReceiveClock();
  private readonly verifier = new CredentialVerifier();
  private readonly batcher: TelemetryBatcher;
  private running: RunningBroker | null = null;
  private closing = false;
  /** The routes' say on an accepted client publish, before its PUBACK (see RouteBus.setGate). */
  private routeGate: ((packet: PublishPacket, done: () => void) => void) | null = null;

  private devices = new Map<string, Device>();
  private directory: DeviceDirectory = new Map();
  private readonly mappers = new Map<string, { hash: string; protocol: string }>();
  /** App credentials, devices' grants and general-purpose clients: topics beyond the twin contract. */
  private readonly apps: AppTraffic;
  /** Fingerprint of the desired section last published per device (this run). */
  private readonly publishedDesired = new Map<string, string>();
  /**
   * Retained topics of devices no longer on the node are cleared by a sweep, once the device
   * list is known: after each removal, and at the first sync of a run (a removal a crash
   * interrupted is finished then).
   */
  private needsSweep = true;
  private devicesKnown = false;
  private readonly clients = new ClientRegistry();
  private readonly publisher: BrokerPublisher;
  private readonly counters = { received: 0, refused: 0, sent: 0 };
  /** Kept from every subscriber (see refusedMessages.ts). */
  private readonly refusedMessages = new RefusedMessages();
  private readonly presence: DevicePresence;
  /** The device list in use (this.devices, keptDevices) is not committed yet (see setDevices). */
  private devicesUnrecorded = false;
  private readonly devicesRetry = new RetryLater(RETRY_MS, () => {
    if (this.devicesUnrecorded) this.setDevices([...this.devices.values()], this.keptDevices);
  });
  /** Devices not in the list whose twins and retained topics stay (see setDevices). */
  private keptDevices: ReadonlySet<string> = new Set();
  /** Retained desired messages or the orphan sweep the broker could not store (see reconcileBroker). */
  private readonly brokerRetry = new RetryLater(RETRY_MS, () => this.reconcileBroker());

  constructor(private readonly opts: DeviceHubOptions) {
    this.logger = opts.logger ?? NOOP_LOGGER;
    this.apps = new AppTraffic(opts.generalPurpose ?? false, this.logger);
    this.publisher = new BrokerPublisher((err) => this.logger.warn({ err: String(err) }, 'device hub publish failed'));
    this.batcher = new TelemetryBatcher(opts.telemetryBatch ?? DEFAULT_TELEMETRY_BATCH, (entry) => this.storage.sendUpstream(entry),
      (flush) => this.commit.add(flush));
    this.storage = new DeviceStorage({
      db: opts.db,
      reportRefreshMs: opts.reportRefreshMs ?? 60_000,
      upstreamIntervalMs: opts.twinUpstreamIntervalMs ?? DEFAULT_TWIN_UPSTREAM_INTERVAL_MS,
      ...(opts.maxBatch !== undefined ? { maxBatch: opts.maxBatch } : {}),
      upstream: opts.upstream,
      neverQueue: (packet) => this.refusedMessages.includes(packet),
      maxQueuedPerSession: opts.maxQueuedPerSession ?? DEFAULT_MAX_QUEUED_PER_SESSION,
      ...(opts.onUpstreamCommit ? { onUpstreamCommit: opts.onUpstreamCommit } : {}),
      devices: () => this.devices,
      telemetryMaxSamples: this.batcher.maxSamples,
      oldestUnsentTelemetry: () => this.batcher.oldestJournalSeq(),
      warn: (obj, msg) => this.logger.warn(obj, msg),
    });
    ({ persistence: this.persistence, twins: this.twins, commit: this.commit } = this.storage);
    this.twins.offlineReason = (name) => this.clients.mapperError(name);
    this.presence = new DevicePresence({
      commit: this.commit, twins: this.twins, clients: this.clients, publisher: this.publisher, devices: () => this.devices,
      info: (obj, msg) => this.logger.info(obj, msg),
    });
    if (this.twins.corrupt.length > 0) this.logger.warn({ devices: this.twins.corrupt }, 'device twin rows do not parse; starting those twins empty');
    this.messageTargets = {
      twins: this.twins,
      batcher: this.batcher,
      journalTelemetry: (device, samples) => this.storage.journalTelemetry(device, samples),
      publish: (topic, message, qos) => this.publisher.publishJson(topic, message, { qos, retain: false }),
      refused: (device, topic, refusal, payload) => {
        this.refusedMessages.add(payload);
        this.counters.refused++;
        this.logger.warn({ device, topic, error: refusal.error }, 'device message refused');
      },
    };
  }

  async start(): Promise<{ port: number; tlsPort?: number }> {
    if (this.running !== null || this.closing) throw new Error('the device hub is already started or closed');
    // Before the broker takes messages: what an unclean stop left acked but unsent goes first.
    this.storage.recoverTelemetry();
    this.running = await startBroker(this.persistence, this.opts.host, this.opts.port, {
      authenticate: (client, username, password) => this.authenticate(client, username, password),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub) => this.authorizeSubscribe(client, sub),
      mayForward: (client, packet) => {
        const principal = this.clients.principalOf(client);
        const allowed = principal !== undefined && !this.refusedMessages.includes(packet)
          && (mayReceive(principal, packet.topic, this.directory) || this.apps.mayReceive(principal, packet.topic));
        if (allowed) { this.counters.sent++; this.apps.delivered(principal); } // one delivery to one client (edge metrics)
        return allowed;
      },
      onReady: (client) => this.onClientReady(client),
      onDisconnect: (client) => this.onClientDisconnect(client),
      onSubscribed: (client, subs) => this.sendDeltas(client, subs),
      warn: (obj, msg) => this.logger.warn(obj, msg),
    }, this.opts.tls, this.opts.brokerLimits ?? DEFAULT_BROKER_LIMITS);
    this.publisher.attach(this.running.broker);
    this.presence.announceStaleOffline();
    this.reconcileBroker();
    this.logger.info({ host: this.opts.host, port: this.running.port, tlsPort: this.running.tlsPort }, 'device MQTT broker listening');
    return { port: this.running.port, ...(this.running.tlsPort !== undefined ? { tlsPort: this.running.tlsPort } : {}) };
  }

  /**
   * The node's devices as the cloud wants them (from the edge DB); call at start and after every
   * sync. Devices in `keep` are missing from the list but not removed (their stored object
   * cannot be read until the cloud sends it again): their twins and retained topics stay, but
   * they cannot log in meanwhile.
   */
  setDevices(devices: Device[], keep: ReadonlySet<string> = new Set()): void {
    if (this.closing) return;
    const previous = this.devices;
    this.keptDevices = keep;
    this.devicesKnown = true;
    this.devices = new Map(devices.map((d) => [d.metadata.name, d]));
    this.directory = new Map(devices.map((d) => [d.metadata.name, d.spec.protocol.name]));
    this.apps.setDevices(devices);
    this.devicesUnrecorded = false; // this list supersedes one waiting to be retried
    // One transaction for the whole list: a node's first sync of N devices is one commit, not 2N.
    try {
      this.recordDevices(devices, previous);
    } catch (err) {
      // The twins in memory are back to what is committed (with empty ones for new devices), so
      // the hub works on with this list; recording it is tried again until it sticks.
      this.logger.warn({ err: String(err), retryInMs: RETRY_MS }, 'recording the device list failed; trying again');
      this.devicesUnrecorded = true;
      this.devicesRetry.add('devices');
      return;
    }
    this.reconcileBroker();
  }

  /** In one committed transaction: removed devices' twins go, new ones get theirs, changes go upstream. Throws if not committed. */
  private recordDevices(devices: Device[], previous: ReadonlyMap<string, Device>): void {
    this.commit.now(() => {
      for (const name of new Set([...previous.keys(), ...this.twins.names()])) {
        if (!this.devices.has(name) && !this.keptDevices.has(name)) this.removeDevice(name);
      }
      for (const device of devices) {
        const name = device.metadata.name;
        this.twins.ensure(name);
        const before = previous.get(name);
        if (before !== undefined && before.spec.protocol.name !== device.spec.protocol.name) this.presence.mapperWordEnds(name);
        if (before !== undefined && before.spec.credentialHash !== device.spec.credentialHash) {
          this.disconnectWhere((p) => p.kind === 'device' && p.device === name && p.certificateSerial === undefined, `credential of device ${name} changed`);
        }
        const listed = new Set((device.spec.certificates ?? []).map((c) => c.serial));
        this.disconnectWhere((p) => p.kind === 'device' && p.device === name && p.certificateSerial !== undefined && !listed.has(p.certificateSerial),
          `a certificate of device ${name} was revoked`);
        if (this.mappers.has(name)) this.logger.warn({ device: name }, 'a mapper credential has the same name as a device; the mapper login wins');
        if (this.twins.needsReport(device)) this.twins.report(device);
      }
    });
  }

  /** The device CA bundle changed (the node's identity was renewed, the cloud CA rotated): new TLS connections check against it. */
  reloadDeviceTrust(): void {
    this.running?.reloadTls();
  }

  /** Credentials for a mapper: may act for every device of the given protocol on this node. */
  addMapperCredential(username: string, passwordHashScrypt: string, protocol: string): void {
    if (username.length === 0 || protocol.length === 0) throw new TypeError('mapper username and protocol must not be empty');
    if (parseCredentialHash(passwordHashScrypt) === null) throw new TypeError('mapper password hash must be scrypt$<saltB64>$<hashB64>');
    const before = this.mappers.get(username);
    this.mappers.set(username, { hash: passwordHashScrypt, protocol });
    if (before !== undefined && (before.hash !== passwordHashScrypt || before.protocol !== protocol)) {
      this.disconnectWhere((p) => p.kind === 'mapper' && p.username === username, `credential of mapper ${username} changed`);
    }
  }

  /**
   * A workload's own credential (edgecore/devices/apps): may use only its grant's topics. A
   * changed hash or grant ends the connections of the old one; undefined removes it (and them).
   */
  setAppCredential(username: string, credential: { hash: string; workload: string; grant: MqttGrant } | undefined): void {
    if (!username.startsWith(APP_CLIENT_ID_PREFIX)) throw new TypeError(`app usernames start with "${APP_CLIENT_ID_PREFIX}"`);
    if (credential !== undefined && parseCredentialHash(credential.hash) === null) throw new TypeError('app password hash must be scrypt$<saltB64>$<hashB64>');
    const ended = credential === undefined ? this.apps.identities.delete(username) : this.apps.identities.set(username, credential);
    if (ended) this.disconnectWhere((p) => p.kind === 'app' && p.username === username, `credential of app ${username} ${credential === undefined ? 'removed' : 'changed'}`);
  }

  statusSnapshot(): DeviceHubStatus {
    const devices = [...this.devices.values()].map((device) => {
      const name = device.metadata.name;
      const twin = this.twins.get(name) ?? emptyTwin();
      const mapperError = twin.online ? undefined : this.clients.mapperError(name);
      return {
        name, online: twin.online, lastSeen: twin.lastSeen, reported: { ...twin.reported },
        desiredVersion: device.spec.desiredVersion, reportedVersion: twin.version, ...(mapperError !== undefined ? { mapperError } : {}),
      };
    }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { clients: this.running?.broker.connectedClients ?? 0, devices, messages: { ...this.counters }, appGrants: this.apps.identities.snapshot(), commits: this.commit.stats(),
      unreadableRows: this.persistence.unreadableRowsDropped, queuedDropped: this.persistence.queuedDropped };
  }

  /**
   * Announces connected devices offline (retained status and upstream), sends pending
   * telemetry upstream, stops the broker and closes the database. Close the hub before the
   * outbox it reports to.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Messages already taken in are committed (and acked) first; later ones are refused.
    this.commit.stop(new Error('the device hub is closing'));
    this.presence.stop();
    this.devicesRetry.stop();
    this.brokerRetry.stop();
    try {
      this.commit.now(() => {
        this.batcher.flushAll();
        this.twins.releaseAll(this.devices);
        if (this.running === null) return;
        const announce = [...this.clients.onlineDevices()].map((name) => this.presence.mark(name, false));
        return () => { for (const publish of announce) publish?.(); };
      });
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'committing the last device state at close failed');
    }
    if (this.running !== null) {
      this.clients.clear();
      await this.publisher.idle();
      this.publisher.stop();
      await stopBroker(this.running);
    }
    await this.storage.close();
  }

  // ---- authentication and access ----------------------------------------------------------

  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<AuthResult> {
    if (this.closing) return { ok: false, returnCode: CONNACK_SERVER_UNAVAILABLE, reason: 'the broker is shutting down' };
    const presented = presentedCertificate(client.conn);
    const certificate = presented === null ? null
      : deviceForCertificate(presented, this.opts.tls?.deviceCa?.() !== undefined, (name) => this.devices.get(name), new Date());
    const result = await authenticateClient({
      allowAnonymous: this.opts.allowAnonymous,
      generalPurpose: this.apps.generalPurpose,
      verifier: this.verifier,
      mapper: (username) => this.mappers.get(username),
      app: (username) => this.apps.credential(username),
      deviceCredential: (name) => this.devices.get(name)?.spec.credentialHash,
      directory: () => this.directory,
    }, client.id, username, password, certificate);
    if (!result.ok) return result;
    const owner = sessionOwner(result.principal);
    const overQuota = owner === null || client.clean ? null : enforceSessionQuota(this.persistence, owner, client.id, this.opts.maxSessionsPerDevice ?? DEFAULT_MAX_SESSIONS_PER_DEVICE, {
      ownedBy: (id) => (result.principal.kind === 'app' ? appClientIdOwner(id, owner) : clientIdOwner(id, this.directory)),
      isConnected: (id) => this.clients.hasLiveId(id), warn: (obj, msg) => this.logger.warn(obj, msg),
    });
    if (overQuota !== null) return { ok: false, returnCode: CONNACK_SERVER_UNAVAILABLE, reason: overQuota };
    this.clients.authenticated(client, result.principal);
    return result;
  }

  /**
   * Accepts a publish the sender may make only once the hub has applied it and committed the
   * result (group commit, see groupCommit.ts): aedes sends the QoS 1 PUBACK after `done`, so an
   * acknowledged report is on disk, twin and outbox entry alike.
   */
  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err: Error | null) => void): void {
    this.counters.received++;
    // client is null for a will left by a previous run: its sender cannot be checked any more.
    const principal = client === null ? undefined : this.clients.principalOf(client);
    if (this.apps.handles(packet.topic)) {
      if (this.closing) return done(new Error('the device hub is closing'));
      return this.apps.authorizePublish(client, principal, packet, (err) => (err ? done(err) : this.throughRoutes(packet, done)), () => { this.counters.refused++; });
    }
    if (principal === undefined || !mayPublish(principal, packet.topic, this.directory)) {
      if (principal !== undefined && isStaleMapperPublish(principal, packet.topic, this.directory)) {
        packet.retain = false; // acked and dropped, never kept (see isStaleMapperPublish)
        return done(null);
      }
      // A will on the device's own status topic is expected and dropped quietly: the edge
      // publishes the status itself when the connection ends.
      const target = parseDeviceTopic(packet.topic)?.device;
      const statusWill = principal !== undefined && target !== undefined && packet.topic === deviceTopics(target).status;
      if (!statusWill) {
        this.counters.refused++;
        this.apps.refusedFor(principal);
        this.logger.warn({ clientId: client?.id ?? null, ...principalLogFields(principal), topic: packet.topic }, 'MQTT publish refused');
      }
      return done(new Error(`not allowed to publish to ${packet.topic}`));
    }
    // Not acked: the publisher sends it again to the next run.
    if (this.closing) return done(new Error('the device hub is closing'));
    // Device messages are consumed by the edge; keeping them retained would replay stale reports.
    packet.retain = false;
    const target = parseDeviceTopic(packet.topic)!; // mayPublish parsed it
    if (target.rest === MAPPER_STATE_SUFFIX) {
      const state = parseMapperState(this.messageTargets, target.device, packet.topic, payloadOf(packet));
      if (state !== null) this.presence.fromMapper(client!, target.device, state);
      return done(null); // acked at once: what a mapper says lives only as long as its connection
    }
    this.commit.add(() => this.onDeviceMessage(principal, target, packet), (err) => (err ? done(err) : this.throughRoutes(packet, done)));
  }

  /** An accepted publish, past the routes (queued by any that want it) before aedes acknowledges it. */
  private throughRoutes(packet: PublishPacket, done: (err: Error | null) => void): void {
    const gate = this.routeGate;
    if (gate === null || this.refusedMessages.includes(packet)) return done(null);
    gate(packet, () => done(null));
  }

  /**
   * In-process access to the running broker for the routes (devices/routes/routeEngine.ts): an
   * internal subscription (no MQTT client, no credential), publishes from the cloud, and the
   * hub's verdict on messages it took but refused to pass on. Null until start().
   */
  routeBus(): RouteBus | null {
    const broker = this.running?.broker;
    if (!broker) return null;
    return {
      subscribe: (filter, deliver) => new Promise<void>((resolve) => broker.subscribe(filter, deliver, resolve)),
      unsubscribe: (filter, deliver) => new Promise<void>((resolve) => broker.unsubscribe(filter, deliver, resolve)),
      publish: (topic, payload, qos, retain) => new Promise<void>((resolve, reject) =>
        broker.publish({ cmd: 'publish', topic, payload, qos, retain, dup: false }, (err) => (err ? reject(err) : resolve()))),
      refused: (packet) => this.refusedMessages.includes(packet),
      setGate: (gate) => { this.routeGate = gate; },
    };
  }

  private authorizeSubscribe(client: Client, sub: Subscription): Subscription | null {
    const principal = this.clients.principalOf(client);
    if (principal !== undefined && (maySubscribe(principal, sub.topic, this.directory) || this.apps.maySubscribe(principal, sub.topic))) return sub;
    this.apps.refusedFor(principal);
    this.logger.warn({ clientId: client.id, ...principalLogFields(principal), topic: sub.topic }, 'MQTT subscription refused');
    return null;
  }

  private disconnectWhere(match: (p: Principal) => boolean, reason: string): void {
    for (const client of this.clients.clientsWhere(match)) {
      this.logger.info({ clientId: client.id, reason }, 'disconnecting MQTT client');
      client.close();
    }
  }

  // ---- connections and status -------------------------------------------------------------

  private onClientReady(client: Client): void {
    if (this.closing) return;
    const cameOnline = this.clients.ready(client, (name) => this.devices.has(name));
    if (cameOnline !== null) this.presence.changed(cameOnline, true);
    for (const [device, state] of this.clients.takeHeldWords(client)) this.presence.fromMapper(client, device, state);
    // A persistent session's subscriptions come back without a SUBSCRIBE: send its deltas now.
    if (!client.clean) {
      this.persistence.subscriptionsByClient({ id: client.id })
        .then((subs) => this.sendDeltas(client, subs), (err: unknown) => this.logger.warn({ err: String(err) }, 'reading session subscriptions failed'));
    }
  }

  private onClientDisconnect(client: Client): void {
    if (this.closing) return;
    for (const device of this.clients.gone(client)) this.presence.changed(device, false);
    for (const device of this.clients.dropMapperErrors(client)) this.presence.reasonChanged(device);
  }

  // ---- device messages --------------------------------------------------------------------

  /**
   * In a batch: applies one device message; returns the publishes to make once it is committed.
   * The device list may have changed since the publish was allowed: the sender is checked again.
   */
  private onDeviceMessage(principal: Principal, parsed: { device: string; rest: string }, packet: PublishPacket): (() => void) | undefined {
    if (!actsFor(principal, parsed.device, this.directory)) return undefined;
    const device = this.devices.get(parsed.device);
    if (device === undefined) return undefined;
    try {
      return applyDeviceMessage(this.messageTargets, device, parsed.rest, packet.topic, payloadOf(packet), this.clock.now());
    } catch (err) {
      this.logger.warn({ device: parsed.device, topic: packet.topic, err: String(err) }, 'handling a device message failed');
      return undefined;
    }
  }

  // ---- desired, delta and removal ---------------------------------------------------------

  /** In a transaction. */
  private removeDevice(name: string): void {
    this.twins.remove(name);
    this.clients.forgetMapperState(name);
    this.publishedDesired.delete(name);
    this.batcher.discard(name);
    this.needsSweep = true;
    this.disconnectWhere((p) => connectedDevice(p) === name, `device ${name} was removed from the node`);
  }

  /** Publishes what changed in desired and clears removed devices' retained topics (once the broker runs). */
  private reconcileBroker(): void {
    if (this.running === null || this.closing) return;
    if (this.needsSweep && this.devicesKnown) {
      this.needsSweep = false;
      this.publisher.enqueue(() => this.clearOrphanedRetained().catch((err: unknown) => {
        this.needsSweep = true;
        this.brokerRetry.add('sweep');
        throw err;
      }));
    }
    for (const [name, device] of this.devices) {
      const fingerprint = desiredFingerprint(device.spec);
      if (this.publishedDesired.get(name) === fingerprint) continue;
      this.publishedDesired.set(name, fingerprint);
      const topics = deviceTopics(name);
      // A retained desired the broker could not store (a failing disk) is published again
      // later: a device subscribing afterwards must find it.
      this.publisher.publishJson(topics.desired, desiredMessage(device.spec), { qos: 1, retain: true }, () => {
        if (this.publishedDesired.get(name) === fingerprint) this.publishedDesired.delete(name);
        this.brokerRetry.add('desired');
      });
      const delta = deltaMessage(device.spec, this.twins.get(name)?.reported ?? {});
      if (delta !== null) this.publisher.publishJson(topics.delta, delta, { qos: 1, retain: false });
    }
  }

  private async clearOrphanedRetained(): Promise<void> {
    const orphaned = await orphanedRetainedTopics(this.persistence, (device) => this.devices.has(device) || this.keptDevices.has(device));
    for (const topic of orphaned) await this.publisher.publishNow(topic, Buffer.alloc(0), { qos: 0, retain: true });
  }

  /** Sends the client the current delta of every device whose delta topic one of `subs` matches. */
  private sendDeltas(client: Client, subs: readonly { topic: string; qos: number }[]): void {
    const principal = this.clients.principalOf(client);
    if (principal === undefined || subs.length === 0 || this.closing) return;
    const candidates = [...this.devices].map(([name, device]) => ({ device, reported: this.twins.get(name)?.reported ?? {} }));
    for (const { topic, message, qos } of deltasForSubscriptions(candidates, subs, (topic) => mayReceive(principal, topic, this.directory))) {
      client.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(message)), qos, retain: false, dup: false }, (err) => {
        if (err) this.logger.warn({ clientId: client.id, topic, err: String(err) }, 'sending a delta failed');
      });
    }
  }
}
