import type { RouteBus } from './routes/routeEngine.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { EdgeStatus } from '../../protocol/edgeStatus.js';
import { pemBlocks } from '../../protocol/certificates.js';
import type { UnreadableRow } from '../meta/desired.js';
import type { MetaStore } from '../meta/metaStore.js';
import type { EdgePart } from '../part.js';
import type { AppTemplates, MapperTemplates } from '../runtime/workloadManager.js';
import type { DeviceHub } from './deviceHub.js';
import { DEFAULT_BROKER_LIMITS, DEFAULT_TELEMETRY_BATCH } from './deviceHubOptions.js';
import { brokerExposureWarnings } from './broker/brokerExposure.js';
import { MapperAccess } from './mappers/mapperAccess.js';
import { mapperDevicesRoute } from './mappers/mapperRoute.js';
import { localUrl, withMapperAccess } from './mappers/mapperWorkload.js';
import { AppAccess, appUsername } from './apps/appAccess.js';
import { withAppAccess } from './apps/appWorkload.js';
import type { LocalRoute } from '../local/statusServer.js';

/** The edge settings this part reads (edgecore/config.ts, which itself reads this folder's defaults). */
export interface DeviceSettings {
  node: string;
  dataDir: string;
  statusHost: string;
  mqttHost: string;
  mqttPort: number;
  mqttAllowAnonymous: boolean;
  /** Clients without a username may use the topic space outside ef/ and apps/ (docs/mqtt.md, "General-purpose mode"). */
  mqttGeneralPurpose: boolean;
  mqttTlsPort?: number | undefined;
  mqttTlsCert?: string | undefined;
  mqttTlsKey?: string | undefined;
  mqttTlsClientCa?: string | undefined;
  mqttMaxPacketBytes: number;
  mqttMaxSessionsPerDevice: number;
  mqttMaxQueuedPerSession: number;
  twinUpstreamIntervalMs: number;
  telemetryBatchMs: number;
}

export interface DeviceServiceOptions {
  settings: DeviceSettings;
  meta: MetaStore;
  log: Logger;
  /** The port the edge's local API listens on (mapper workloads are told to read their device list there). */
  localApiPort: () => number;
  /** Device outbox entries are committed (or their commit failed). */
  onUpstreamCommit: (committed: boolean) => void;
  onUnreadable: (kind: UnreadableRow['kind'], rows: UnreadableRow[]) => void;
  /**
   * The cloud CA bundle this node got at join (its identity): what device client certificates
   * are checked against unless --mqtt-tls-client-ca names another. Call reloadDeviceTrust() when
   * it changes.
   */
  deviceCa?: () => string | undefined;
}

/** Counted here because only this part sees every entry the device hub queues (for /metrics). */
export interface DeviceCounters { twinUpdates: number; telemetryBatches: number }

/**
 * The edge's devices part: the MQTT broker and twin engine (DeviceHub), fed from the local
 * database so that it works offline too, the mappers' credentials, and what mapper workloads
 * are told about this node.
 */
export class DeviceService implements EdgePart {
  readonly name = 'devices';
  readonly counters: DeviceCounters = { twinUpdates: 0, telemetryBatches: 0 };
  mqttUrl = '';
  mqttTlsUrl: string | null = null;
  private hub: DeviceHub | undefined;
  private mappers: MapperAccess | undefined;
  private apps: AppAccess | undefined;
  private mapperMqttUrl = '';
  /** The --mqtt-tls-client-ca bundle as last read (at start and on reloadDeviceTrust). */
  private clientCaFromFile: string | undefined;
  /** Settings that widen the broker's reach (brokerExposure.ts): logged at start, shown on the status page. */
  private readonly exposure: string[];

  /** `GET /mapper/v1/devices` for the edge's local API. */
  readonly mapperRoute: LocalRoute;

  constructor(private readonly opts: DeviceServiceOptions) {
    this.exposure = brokerExposureWarnings(opts.settings);
    this.mapperRoute = mapperDevicesRoute(opts.settings.node, () => this.mappers, () => opts.meta.desiredDevices());
  }

  async start(): Promise<void> {
    const { settings, meta, log } = this.opts;
    // Loaded after the workloads are running: the broker is not on the cold-start path.
    const { DeviceHub } = await import('./deviceHub.js');
    this.clientCaFromFile = readClientCa(settings.mqttTlsClientCa);
    const hub = new DeviceHub({
      // Twins live in edge.db next to the outbox: a batch of reports and its outbox entries are one commit.
      db: meta.database,
      host: settings.mqttHost,
      port: settings.mqttPort,
      allowAnonymous: settings.mqttAllowAnonymous,
      generalPurpose: settings.mqttGeneralPurpose,
      maxSessionsPerDevice: settings.mqttMaxSessionsPerDevice,
      maxQueuedPerSession: settings.mqttMaxQueuedPerSession,
      brokerLimits: { ...DEFAULT_BROKER_LIMITS, packet: { ...DEFAULT_BROKER_LIMITS.packet, maxBytes: settings.mqttMaxPacketBytes } },
      twinUpstreamIntervalMs: settings.twinUpstreamIntervalMs,
      telemetryBatch: { ...DEFAULT_TELEMETRY_BATCH, maxDelayMs: settings.telemetryBatchMs },
      ...(settings.mqttTlsPort !== undefined && settings.mqttTlsCert && settings.mqttTlsKey ? {
        tls: {
          port: settings.mqttTlsPort, cert: readFileSync(settings.mqttTlsCert, 'utf8'), key: readFileSync(settings.mqttTlsKey, 'utf8'),
          deviceCa: () => this.clientCaFromFile ?? this.opts.deviceCa?.(),
        },
      } : {}),
      logger: log,
      // Called inside the hub's transaction: the entries commit with the twins they describe.
      upstream: (entries) => {
        meta.enqueueMany(entries, { bodiesParsed: true });
        for (const entry of entries) {
          if (entry.kind === 'twinReported') this.counters.twinUpdates++;
          else this.counters.telemetryBatches++;
        }
      },
      onUpstreamCommit: this.opts.onUpstreamCommit,
    });
    this.hub = hub;
    const { port, tlsPort } = await hub.start();
    for (const warning of this.exposure) log.warn({ mqttHost: settings.mqttHost }, `DEVICE BROKER EXPOSED: ${warning}`);
    this.mqttUrl = `mqtt://${settings.mqttHost}:${port}`;
    if (tlsPort !== undefined) this.mqttTlsUrl = `mqtts://${settings.mqttHost}:${tlsPort}`;
    this.mapperMqttUrl = localUrl('mqtt', settings.mqttHost, port);
    this.mappers = new MapperAccess(join(settings.dataDir, 'mappers'), hub);
    this.apps = new AppAccess(join(settings.dataDir, 'apps'), hub);
    await this.syncDevices();
  }

  /**
   * The device CA changed (the node's identity renewed, the cloud CA rotated, or the
   * --mqtt-tls-client-ca file was replaced): the TLS listener checks new connections against it.
   * Connections already in keep going; a revoked certificate ends them through its Device.
   */
  reloadDeviceTrust(): void {
    try {
      this.clientCaFromFile = readClientCa(this.opts.settings.mqttTlsClientCa);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not re-read the device client CA; keeping the previous one');
    }
    this.hub?.reloadDeviceTrust();
  }

  /** The desired devices changed in the local database: the broker and mappers follow. */
  async syncDevices(): Promise<void> {
    const { items: devices, unreadable } = this.opts.meta.readDesiredDevices();
    this.opts.onUnreadable('Device', unreadable);
    // A device whose stored object cannot be read is not removed: its twin waits for the resync.
    this.hub?.setDevices(devices, new Set(unreadable.map((row) => row.name)));
    await this.mappers?.ensureFor(devices).catch((err: Error) => this.opts.log.warn({ err: err.message }, 'could not set up mapper credentials'));
  }

  /** A mapper workload's template with this node's broker, local API and mapper password file. */
  readonly mapperTemplates: MapperTemplates = async (template) => {
    const mappers = this.mappers;
    if (!mappers) throw new Error('the device broker is not running');
    const credentialFile = await mappers.ensureProtocol(template.deviceMapper.protocol);
    const { settings } = this.opts;
    return withMapperAccess(template, {
      node: settings.node,
      edgeUrl: localUrl('http', settings.statusHost, this.opts.localApiPort()),
      mqttUrl: this.mapperMqttUrl,
      credentialFile,
    });
  };

  /** A workload's own broker identity (its grant's topics only), for templates with `mqtt`. */
  readonly appTemplates: AppTemplates = {
    template: async (workload, template) => {
      const apps = this.apps;
      if (!apps) throw new Error('the device broker is not running');
      const passwordFile = await apps.ensure(workload, template.mqtt);
      return withAppAccess(template, { mqttUrl: this.mapperMqttUrl, username: appUsername(workload), passwordFile });
    },
    keepOnly: (workloads) => this.apps?.keepOnly(workloads),
  };

  /** The broker's part of `/status`; null before it listens. */
  statusSnapshot(): EdgeStatus['mqtt'] {
    return this.hub ? { url: this.mqttUrl, ...this.hub.statusSnapshot(), ...(this.exposure.length > 0 ? { warnings: this.exposure } : {}) } : null;
  }

  /** The broker for the routes (devices/routes/); null until started. */
  routeBus(): RouteBus | null {
    return this.hub?.routeBus() ?? null;
  }

  async stop(): Promise<void> {
    await this.hub?.close();
  }
}

/** The --mqtt-tls-client-ca bundle; a file without a certificate in it is refused, naming it. */
function readClientCa(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read mqttTlsClientCa file ${path}: ${(err as Error).message}`);
  }
  if (pemBlocks(text).length === 0) throw new Error(`mqttTlsClientCa file ${path} holds no PEM CERTIFICATE block`);
  return text;
}
