import { z } from 'zod';
import { RouteCountersSchema } from './routes.js';
import { AgentUpgradeStatusSchema } from './agentUpgrade.js';
import { WorkloadStatusSchema } from './resources.js';
import { AppGrantStatusSchema } from './mqttFilters.js';

/**
 * `GET /status` of edgecore's local API: what a field engineer (the status page, `edgectl local
 * status`) sees of one node, from local state only. edgecore builds it, edgectl parses it with
 * this schema. Objects are not strict: a newer edgecore may add fields an older edgectl ignores.
 * Secrets never appear here (no template env, no credentials).
 */

const iso = z.string();

export const LinkStatsSchema = z.object({
  connects: z.number(),
  syncFrames: z.number(),
  snapshots: z.number(),
  changesReceived: z.number(),
  upstreamSent: z.number(),
  errorsFromCloud: z.number(),
  bytesIn: z.number(),
  bytesOut: z.number(),
});

export const EdgeLinkStatusSchema = z.object({
  /** The cloudcore URL the link is on now (or trying). Without user info: a URL with a password in it is not shown. */
  cloudUrl: z.string(),
  /** Every configured cloudcore replica URL, in the order given (absent from an edgecore before replicas). */
  cloudUrls: z.array(z.string()).optional(),
  /** connecting | connected | disconnected | stopped | join-failed */
  state: z.string(),
  /** When the link last went down; null while connected. */
  downSince: iso.nullable(),
  /** Seconds the link has been down by the node's clock; null while connected. */
  downForSeconds: z.number().nullable(),
  /** When the current connection came up; null while down. */
  connectedSince: iso.nullable(),
  /** When the link was last up (now, if it is up); null if never since edgecore started. */
  lastConnectedAt: iso.nullable(),
  lastError: z.string().nullable(),
  stats: LinkStatsSchema.nullable(),
});

/** The node's identity to the cloud (its certificate, or a bearer credential from a cloud on plain HTTP). No key, no credential. */
export const EdgeIdentityStatusSchema = z.object({
  /** certificate | bearer */
  mode: z.string(),
  /** Certificate serial (lower-case hex); null in bearer mode. */
  serial: z.string().nullable(),
  notAfter: iso.nullable(),
  /** When the edge renews it (2/3 of its life); null: never (a credential that does not expire). */
  renewAt: iso.nullable(),
  /** valid | renew-due | expired-in-grace | needs-new-token */
  standing: z.string(),
  lastRenewalError: z.string().nullable(),
  lastRenewedAt: iso.nullable().optional(),
});

export const EdgeWorkloadStatusSchema = z.object({
  name: z.string(),
  generation: z.number(),
  runtime: z.string(),
  status: WorkloadStatusSchema.nullable(),
  /** Last few lines of the workload's log (each cut to a few hundred characters). */
  recentLogs: z.array(z.string()).optional(),
});

export const EdgeDeviceStatusSchema = z.object({
  name: z.string(),
  online: z.boolean(),
  lastSeen: iso.nullable(),
  reported: z.record(z.string(), z.unknown()),
  desiredVersion: z.number(),
  reportedVersion: z.number(),
  /** While offline: why its mapper last said it cannot reach it. */
  mapperError: z.string().optional(),
});

export const EdgeHostStatusSchema = z.object({
  hostname: z.string(),
  os: z.string(),
  arch: z.string(),
  uptimeSeconds: z.number(),
  loadAverage: z.array(z.number()),
  memory: z.object({ totalBytes: z.number(), availableBytes: z.number(), edgecoreRssBytes: z.number() }),
  /** The file system holding the edge's data directory; null if it cannot be read. */
  disk: z.object({ path: z.string(), totalBytes: z.number(), availableBytes: z.number() }).nullable(),
});

export const EdgeStatusSchema = z.object({
  node: z.string(),
  version: z.string(),
  /** The node's clock when this answer was built. */
  generatedAt: iso,
  edgecore: z.object({ version: z.string(), pid: z.number(), startedAt: iso, uptimeSeconds: z.number() }),
  host: EdgeHostStatusSchema,
  link: EdgeLinkStatusSchema,
  /** null until the node has an identity; absent from an edgecore older than node certificates. */
  identity: EdgeIdentityStatusSchema.nullable().optional(),
  sync: z.object({ epoch: z.string(), lastRevision: z.number() }),
  outbox: z.object({ depth: z.number(), dropped: z.number(), oldestSeq: z.number().nullable() }),
  mqtt: z.object({
    url: z.string(),
    clients: z.number(),
    devices: z.array(EdgeDeviceStatusSchema),
    /** received: client PUBLISHes; refused: of those, not allowed or not parseable; sent: deliveries to clients. */
    messages: z.object({ received: z.number(), refused: z.number(), sent: z.number().optional() }),
    /** The hub's group commits: transactions, the pieces of work they carried (÷ = mean batch), rollbacks. */
    commits: z.object({ transactions: z.number(), items: z.number(), rollbacks: z.number() }).optional(),
    /** Stored broker packets (retained, queued, wills) that could not be read back and were dropped since edgecore started. */
    unreadableRows: z.number().optional(),
    /** Queued messages of persistent sessions dropped, oldest first, for the per-session limit since edgecore started. */
    queuedDropped: z.number().optional(),
    /** Per app identity on the broker: its grant and messages published, delivered and refused this run; absent from an older edgecore. */
    appGrants: z.array(AppGrantStatusSchema).optional(),
    /** Settings that widen who can reach or use the broker (anonymous access, plain MQTT off loopback); absent when none. */
    warnings: z.array(z.string()).optional(),
  }).nullable(),
  workloads: z.array(EdgeWorkloadStatusSchema),
  /** The node's routes (docs/edge-data.md, "Routes") and their counters; absent from an edgecore older than routes. */
  routes: z.array(RouteCountersSchema).optional(),
  /** Over-the-air agent upgrades (docs/install.md, "Upgrade"); absent from an edgecore older than them. */
  upgrade: z.object({
    /** The version `old` names: what a manual rollback would return to (null: none). */
    previousVersion: z.string().nullable(),
    lastAttempt: AgentUpgradeStatusSchema.nullable(),
  }).optional(),
});

export type EdgeStatus = z.infer<typeof EdgeStatusSchema>;
export type EdgeLinkStatus = z.infer<typeof EdgeLinkStatusSchema>;
export type EdgeIdentityStatus = z.infer<typeof EdgeIdentityStatusSchema>;
export type EdgeWorkloadStatus = z.infer<typeof EdgeWorkloadStatusSchema>;
export type EdgeDeviceStatus = z.infer<typeof EdgeDeviceStatusSchema>;
export type EdgeHostStatus = z.infer<typeof EdgeHostStatusSchema>;
