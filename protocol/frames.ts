import { z } from 'zod';
import { AgentUpgradeFrameSchema, AgentUpgradeStatusSchema } from './agentUpgrade.js';
import { MAX_CSR_PEM_BYTES } from './certificates.js';
import { DeviceSchema, ReportedTwinSchema, TelemetrySampleSchema } from './devices.js';
import { EdgeEventSchema, NameSchema, WorkloadSchema, WorkloadStatusSchema } from './resources.js';
import { NodeRouteSchema, PublishRequestFrameSchema, PublishResultFrameSchema, RoutedAckFrameSchema, RoutedFrameSchema, RouteStatusFrameSchema } from './routes.js';

/**
 * Frames on the cloud ⇄ edge WebSocket link. Every frame is one JSON text message with a
 * `type`. Anything that does not parse against these schemas is refused with an `error`
 * frame naming the problem; the link stays up. The one exception is a field these schemas do
 * not know: it comes from a newer peer, and parseFrame drops it (docs/sync.md, Version skew).
 * So a change to a frame within one PROTOCOL_VERSION may only add optional fields.
 */

const revision = z.number().int().nonnegative();
const seq = z.number().int().positive();

// ---- edge → cloud ---------------------------------------------------------------------------

export const AgentInfoSchema = z.strictObject({
  version: z.string().max(64), os: z.string().max(64), arch: z.string().max(64), hostname: z.string().max(255),
  /** The latest agent upgrade attempt (docs/install.md, "Upgrade"): after a switch, the new agent's hello carries the outcome. */
  upgrade: AgentUpgradeStatusSchema.optional(),
});

export type AgentInfo = z.infer<typeof AgentInfoSchema>;

/** The agent's state changed (an upgrade moved on); the cloud records it in the Node's status. */
export const AgentStatusFrameSchema = z.strictObject({ type: z.literal('agentStatus'), agent: AgentInfoSchema });

/** First frame after connecting: where the edge's durable state stands. */
export const HelloFrameSchema = z.strictObject({
  type: z.literal('hello'),
  protocolVersion: z.number().int().positive(),
  node: NameSchema,
  /** Random id created with the edge database; a new epoch means the edge lost its state. */
  epoch: z.string().min(8).max(64),
  /** Newest revision the edge has committed to its database. */
  lastRevision: revision,
  agent: AgentInfoSchema,
  /** What this edge takes beyond protocol 1's first frames (LINK_FEATURES); absent from an older edge. */
  features: z.array(z.string().max(64)).max(64).optional(),
});

/** Sent after the edge committed everything up to `revision`. */
export const AckFrameSchema = z.strictObject({ type: z.literal('ack'), node: NameSchema.optional(), revision });

export const UpstreamEntrySchema = z.discriminatedUnion('kind', [
  /** The device's whole reported section as the edge holds it (coalesces per device). */
  z.strictObject({
    seq, kind: z.literal('twinReported'), key: z.string().max(300),
    body: z.strictObject({
      device: NameSchema, twin: ReportedTwinSchema, online: z.boolean(), lastSeen: z.string().nullable(),
      observedGeneration: z.number().int().nonnegative(),
      /** Offline, behind a mapper: why the mapper cannot reach it. */
      offlineReason: z.string().max(1024).optional(),
    }),
  }),
  /** Telemetry samples of one device, oldest first (a bounded spool on the edge). */
  z.strictObject({
    seq, kind: z.literal('telemetry'), key: z.string().max(300),
    body: z.strictObject({ device: NameSchema, samples: z.array(TelemetrySampleSchema).min(1).max(1000) }),
  }),
  z.strictObject({
    seq, kind: z.literal('workloadStatus'), key: z.string().max(300),
    body: z.strictObject({ app: NameSchema, status: WorkloadStatusSchema }),
  }),
  z.strictObject({ seq, kind: z.literal('event'), key: z.string().max(300), body: EdgeEventSchema }),
]);
export type UpstreamEntry = z.infer<typeof UpstreamEntrySchema>;

/** Outbox entries, oldest first. `node`, when present, must be the session's own node. */
export const UpstreamFrameSchema = z.strictObject({
  type: z.literal('upstream'),
  node: NameSchema.optional(),
  entries: z.array(UpstreamEntrySchema).min(1).max(1000),
});

/** CPU, memory and disk of the node, sampled by the edge every `nodeStatsSeconds`. */
export const NodeStatsSampleSchema = z.strictObject({
  cpuPercent: z.number().min(0).max(100),
  memoryUsedBytes: z.number().int().nonnegative(), memoryTotalBytes: z.number().int().nonnegative(),
  /** Of the filesystem holding the edge's data directory. */
  diskUsedBytes: z.number().int().nonnegative(), diskTotalBytes: z.number().int().nonnegative(),
});
export type NodeStatsSample = z.infer<typeof NodeStatsSampleSchema>;

/**
 * Heartbeat. `rttMs`: the round trip of the edge's previous ping (sent → pong); `stats`: the
 * node's newest resource sample, when one is due. The cloud keeps both in memory for the dashboard.
 */
export const PingFrameSchema = z.strictObject({
  type: z.literal('ping'), t: z.number(),
  rttMs: z.number().nonnegative().max(3_600_000).optional(),
  stats: NodeStatsSampleSchema.optional(),
});

/** Answers to operator requests tunnelled through the link (logs, exec); `id` is the cloud's. */
const requestId = z.string().min(1).max(64);

/** A chunk of a workload's log; `done` ends the stream (with `error` if it failed). */
export const LogsDataFrameSchema = z.strictObject({
  type: z.literal('logsData'), id: requestId,
  lines: z.array(z.string()).max(5000), done: z.boolean(), error: z.string().max(4096).optional(),
});

export const ExecResultFrameSchema = z.strictObject({
  type: z.literal('execResult'), id: requestId,
  exitCode: z.number().int().nullable(), stdout: z.string(), stderr: z.string(),
  timedOut: z.boolean(), error: z.string().max(4096).optional(),
});

export const EdgeFrameSchema = z.discriminatedUnion('type', [
  HelloFrameSchema, AckFrameSchema, UpstreamFrameSchema, PingFrameSchema, LogsDataFrameSchema, ExecResultFrameSchema,
  AgentStatusFrameSchema, RoutedFrameSchema, RouteStatusFrameSchema, PublishResultFrameSchema,
]);
export type EdgeFrame = z.infer<typeof EdgeFrameSchema>;
export type HelloFrame = z.infer<typeof HelloFrameSchema>;

// ---- cloud → edge ---------------------------------------------------------------------------

export const ChangeSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('put'), object: z.discriminatedUnion('kind', [WorkloadSchema, DeviceSchema, NodeRouteSchema]) }),
  z.strictObject({ op: z.literal('delete'), kind: z.enum(['Workload', 'Device', 'NodeRoute']), name: NameSchema }),
]);
export type Change = z.infer<typeof ChangeSchema>;

/**
 * Desired-state changes for this node. `snapshot` replaces the edge's whole desired set;
 * `delta` applies on top. After committing, the edge's lastRevision becomes `revision`.
 */
export const SyncFrameSchema = z.strictObject({
  type: z.literal('sync'),
  mode: z.enum(['snapshot', 'delta']),
  revision,
  changes: z.array(ChangeSchema),
});
export type SyncFrame = z.infer<typeof SyncFrameSchema>;

/** Cumulative: every upstream entry with seq ≤ `seq` is durable in the cloud. */
export const UpstreamAckFrameSchema = z.strictObject({ type: z.literal('upstreamAck'), seq: z.number().int().nonnegative() });

export const WelcomeFrameSchema = z.strictObject({
  type: z.literal('welcome'),
  protocolVersion: z.number().int().positive(),
  mode: z.enum(['resume', 'snapshot']),
  /** Highest upstream seq the cloud already holds for this epoch: the edge may drop those. */
  upstreamSeq: z.number().int().nonnegative(),
  /** What this cloud takes beyond protocol 1's first frames (LINK_FEATURES); absent from an older cloud. */
  features: z.array(z.string().max(64)).max(64).optional(),
});

/**
 * Additions to protocol 1 that add frame types or synced kinds (which an older peer would refuse
 * whole, docs/sync.md "Version skew"): each side lists in its hello or welcome the ones it takes,
 * and the other sends them only then. `routes`: NodeRoute objects in sync frames, the routed,
 * routedAck, routeStatus, publishRequest and publishResult frames.
 */
export const LINK_FEATURES = { routes: 'routes' } as const;

export const PongFrameSchema = z.strictObject({ type: z.literal('pong'), t: z.number() });

export const ErrorFrameSchema = z.strictObject({
  type: z.literal('error'),
  code: z.enum(['bad_frame', 'forbidden', 'protocol', 'too_large', 'internal']),
  message: z.string(),
  field: z.string().optional(),
});

/** Operator asks for a workload's log: the last `tail` lines, then new ones while `follow`. */
export const LogsRequestFrameSchema = z.strictObject({
  type: z.literal('logsRequest'), id: requestId, workload: NameSchema,
  tail: z.number().int().min(0).max(100_000), follow: z.boolean(),
});

/** Operator runs a command beside a workload (its env and working dir; inside its container). */
export const ExecRequestFrameSchema = z.strictObject({
  type: z.literal('execRequest'), id: requestId, workload: NameSchema,
  command: z.array(z.string()).min(1).max(256), timeoutSeconds: z.number().int().min(1).max(3600),
});

/** The operator went away: stop streaming `id`. */
export const StreamCancelFrameSchema = z.strictObject({ type: z.literal('streamCancel'), id: requestId });

export const CloudFrameSchema = z.discriminatedUnion('type', [
  WelcomeFrameSchema, SyncFrameSchema, UpstreamAckFrameSchema, PongFrameSchema, ErrorFrameSchema,
  LogsRequestFrameSchema, ExecRequestFrameSchema, StreamCancelFrameSchema, AgentUpgradeFrameSchema,
  RoutedAckFrameSchema, PublishRequestFrameSchema,
]);
export type LogsRequestFrame = z.infer<typeof LogsRequestFrameSchema>;
export type ExecRequestFrame = z.infer<typeof ExecRequestFrameSchema>;
export type LogsDataFrame = z.infer<typeof LogsDataFrameSchema>;
export type ExecResultFrame = z.infer<typeof ExecResultFrameSchema>;

/** Most output an exec returns per stream; the rest is cut and marked. */
export const EXEC_OUTPUT_LIMIT_BYTES = 256 * 1024;
export type CloudFrame = z.infer<typeof CloudFrameSchema>;
export type ErrorFrame = z.infer<typeof ErrorFrameSchema>;

// ---- join (HTTP, before the link exists) ----------------------------------------------------

const CsrPemSchema = z.string().min(1).max(MAX_CSR_PEM_BYTES, `a certificate request is at most ${MAX_CSR_PEM_BYTES} bytes of PEM`);

/**
 * Over HTTPS the edge sends a CSR with its token and gets a client certificate for mutual TLS;
 * over plain HTTP (loopback, or --insecure-plain-http) there is no TLS to carry one, and the
 * answer is a bearer credential that expires like a certificate would.
 */
export const JoinRequestSchema = z.strictObject({ node: NameSchema, token: z.string().min(1).max(512), csr: CsrPemSchema.optional() });
export const CertificateIdentitySchema = z.strictObject({
  node: NameSchema,
  /** The node's client certificate (PEM), signed by the cloud CA. */
  certificate: z.string().min(1),
  /** Every CA the edge must trust for cloudcore's server certificate (PEM bundle); its pin is the token's. */
  caBundle: z.string().min(1),
});
export const BearerIdentitySchema = z.strictObject({ node: NameSchema, credential: z.string().min(1), expiresAt: z.string() });
export const JoinResponseSchema = z.union([CertificateIdentitySchema, BearerIdentitySchema]);
export type JoinResponse = z.infer<typeof JoinResponseSchema>;
/** A renewal is made with the identity being renewed (client certificate, or bearer credential). */
export const RenewRequestSchema = z.strictObject({ csr: CsrPemSchema.optional() });
export const RenewResponseSchema = JoinResponseSchema;

/** join: token (+ CSR) → identity; ca: the CA bundle a token pins (public); renew: identity → new identity. */
export const HUB_PATHS = { join: '/hub/v1/join', connect: '/hub/v1/connect', ca: '/hub/v1/ca', renew: '/hub/v1/renew' } as const;
export const NODE_HEADER = 'x-edgefleet-node';

// ---- parsing helpers ------------------------------------------------------------------------

/**
 * `ignored`: dotted paths of fields the schema does not know, dropped before parsing. They come
 * from a newer peer (within one protocol version a frame only ever gains optional fields, and
 * the reader ignores the ones it does not know; docs/sync.md, Version skew).
 */
export type FrameParse<T> = { ok: true; frame: T; ignored?: string[] } | { ok: false; error: ErrorFrame };

/** zod reports unknown fields at every depth in one pass; the rounds only bound a surprise. */
const MAX_UNKNOWN_FIELD_ROUNDS = 4;
/** Paths named in `ignored`: enough to say what a newer peer added, bounded against a flood of keys. */
const MAX_IGNORED_PATHS = 32;

/** Parses a raw text frame. The error names the first offending field. */
export function parseFrame<T>(schema: z.ZodType<T>, raw: string): FrameParse<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return { ok: false, error: { type: 'error', code: 'bad_frame', message: `malformed JSON: ${(err as Error).message}` } };
  }
  const ignored: string[] = [];
  let parsed = schema.safeParse(json);
  for (let round = 0; !parsed.success && round < MAX_UNKNOWN_FIELD_ROUNDS; round++) {
    const issues = parsed.error.issues;
    // Only a frame whose sole fault is fields we do not know is read without them.
    if (!issues.every((i) => i.code === 'unrecognized_keys')) break;
    for (const issue of issues) {
      const holder = valueAt(json, issue.path);
      for (const key of issue.keys) {
        if (holder) delete holder[key];
        // Array positions as `*`: the same field in every entry is one thing to report.
        const where = [...issue.path, key].map((k) => (typeof k === 'number' ? '*' : String(k))).join('.');
        if (ignored.length < MAX_IGNORED_PATHS && !ignored.includes(where)) ignored.push(where);
      }
    }
    parsed = schema.safeParse(json);
  }
  if (parsed.success) return ignored.length > 0 ? { ok: true, frame: parsed.data, ignored } : { ok: true, frame: parsed.data };
  // Name a real fault before an unknown field: it is the one to fix.
  const issue = parsed.error.issues.find((i) => i.code !== 'unrecognized_keys') ?? parsed.error.issues[0]!;
  const field = issue.path.join('.');
  return {
    ok: false,
    error: { type: 'error', code: 'bad_frame', message: `${field ? `${field}: ` : ''}${issue.message}`, ...(field ? { field } : {}) },
  };
}

/** Unknown-field paths a link remembers having reported, bounded against a peer inventing new ones. */
const MAX_REPORTED_PATHS_PER_LINK = 256;

/**
 * What one link has said about a newer peer's unknown fields (FrameParse.ignored): each path
 * once, and nothing more once MAX_REPORTED_PATHS_PER_LINK have been said.
 */
export class IgnoredFieldNotes {
  private readonly said = new Set<string>();

  /** The paths of `ignored` not reported on this link before; remembers them. */
  fresh(ignored: readonly string[] | undefined): string[] {
    if (ignored === undefined || this.said.size >= MAX_REPORTED_PATHS_PER_LINK) return [];
    const fresh = ignored.filter((p) => !this.said.has(p));
    for (const p of fresh) this.said.add(p);
    return fresh;
  }
}

function valueAt(root: unknown, path: readonly PropertyKey[]): Record<PropertyKey, unknown> | undefined {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node !== null && typeof node === 'object' ? node as Record<PropertyKey, unknown> : undefined;
}
