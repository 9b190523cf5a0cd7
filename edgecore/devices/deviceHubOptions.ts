import type { AppGrantStatus } from '../../protocol/index.js';
import type { GroupCommitStats } from './groupCommit.js';
import type { Db } from './persistence/schema.js';
import type { BrokerLimits, TlsListener } from './broker/mqttBroker.js';
import { DEFAULT_LOGIN_GATE } from './broker/loginGate.js';
import type { TelemetryBatchOptions } from './telemetry/telemetryBatcher.js';
import type { DeviceUpstreamEntry } from './twin/twinEngine.js';

/** What a DeviceHub is built from and what it reports (deviceHub.ts). */

export interface HubLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface DeviceHubOptions {
  /**
   * Where the twins and the broker's retained messages and sessions live: a file path (the hub
   * opens it, WAL + synchronous=FULL, and closes it) or an open database it shares with its
   * owner. edgecore passes its meta database, so a batch of reports and the outbox entries
   * `upstream` writes for them are one commit.
   */
  db: string | Db;
  /** MQTT 3.1.1 TCP listener; port 0 picks a free port (start() returns it). */
  host: string;
  port: number;
  /** Optional MQTT-over-TLS listener on the same host. */
  tls?: TlsListener;
  /** Clients without a username may connect, acting as the device named by their client id. */
  allowAnonymous: boolean;
  /**
   * Clients without a username (other than allowAnonymous' devices) may use the general topic
   * space, everything outside `ef/` and `apps/` (docs/mqtt.md, "General-purpose mode"). Default false.
   */
  generalPurpose?: boolean;
  /** Persistent sessions one device may keep (the oldest offline ones make room); default 2. */
  maxSessionsPerDevice?: number;
  /** Unsent messages a persistent session's queue keeps (the oldest dropped beyond); default 1000. */
  maxQueuedPerSession?: number;
  /** Packet sizes, CONNECT deadline, login gate; default DEFAULT_BROKER_LIMITS. */
  brokerLimits?: BrokerLimits;
  /**
   * Receives the twin reports and telemetry batches of one transaction for the edge's outbox,
   * in one call at its end, inside it: write them synchronously to the same database and they
   * commit with the twins. Must not throw for valid entries.
   */
  upstream: (entries: DeviceUpstreamEntry[]) => void;
  /** After each transaction that handed entries to `upstream`: committed, or rolled back (the entries are gone). */
  onUpstreamCommit?: (committed: boolean) => void;
  /** Most device messages committed in one transaction; default 1000. */
  maxBatch?: number;
  logger?: HubLogger;
  telemetryBatch?: TelemetryBatchOptions;
  /** A report that changes no value still refreshes lastSeen upstream once this long has passed. Default 60 s. */
  reportRefreshMs?: number;
  /**
   * A device's reported changes go upstream at most once per this many ms (the first after a
   * quiet spell at once, later ones together with the newest state). The twin itself is saved
   * before every PUBACK regardless. Default 500; 0 sends every change.
   */
  twinUpstreamIntervalMs?: number;
}

export interface DeviceHubStatus {
  clients: number;
  devices: {
    name: string; online: boolean; lastSeen: string | null; reported: Record<string, unknown>; desiredVersion: number; reportedVersion: number;
    /** While offline: why its mapper last said it cannot reach it (mapper/state). */
    mapperError?: string;
  }[];
  messages: { received: number; refused: number; sent: number };
  /** Per app identity: its grant and counters (edgecore/devices/apps). */
  appGrants: AppGrantStatus[];
  commits: GroupCommitStats;
  /** Stored broker packets (retained, queued, wills) that could not be read back and were dropped, this run. */
  unreadableRows: number;
  /** Queued messages of persistent sessions dropped (oldest first) for the per-session limit, this run. */
  queuedDropped: number;
}

export const DEFAULT_TWIN_UPSTREAM_INTERVAL_MS = 500;
/** Payloads are refused above 256 KiB (docs/mqtt.md); 4 KiB more leaves room for topic and header, so that refusal is still answered. */
export const DEFAULT_MAX_PACKET_BYTES = 256 * 1024 + 4096;
/** A CONNECT carries an id, a username, a password and perhaps a will: far less than this. */
export const CONNECT_MAX_BYTES = 64 * 1024;
export const DEFAULT_BROKER_LIMITS: BrokerLimits = {
  packet: { connectMaxBytes: CONNECT_MAX_BYTES, maxBytes: DEFAULT_MAX_PACKET_BYTES },
  connectTimeoutMs: 10_000,
  maxPreLoginPerAddress: 256,
  login: DEFAULT_LOGIN_GATE,
  warnIntervalMs: 60_000,
};
/** Kept here, not in telemetryBatcher.ts, so edgecore's settings do not load the twin engine at start. */
export const DEFAULT_TELEMETRY_BATCH: TelemetryBatchOptions = { maxSamples: 100, maxDelayMs: 1000 };
