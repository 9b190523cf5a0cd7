import { z } from 'zod';
import { DeviceSchema, ReportedTwinSchema, TelemetrySampleSchema } from './devices.js';
import { EdgeEventSchema, NameSchema, WorkloadSchema, WorkloadStatusSchema } from './resources.js';

/**
 * Frames on the cloud ⇄ edge WebSocket link. Every frame is one JSON text message with a
 * `type`. Anything that does not parse against these schemas is refused with an `error`
 * frame naming the problem; the link stays up.
 */

const revision = z.number().int().nonnegative();
const seq = z.number().int().positive();

// ---- edge → cloud ---------------------------------------------------------------------------

export const AgentInfoSchema = z.strictObject({
  version: z.string().max(64), os: z.string().max(64), arch: z.string().max(64), hostname: z.string().max(255),
});

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
]);
export type EdgeFrame = z.infer<typeof EdgeFrameSchema>;
export type HelloFrame = z.infer<typeof HelloFrameSchema>;

// ---- cloud → edge ---------------------------------------------------------------------------

export const ChangeSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('put'), object: z.discriminatedUnion('kind', [WorkloadSchema, DeviceSchema]) }),
  z.strictObject({ op: z.literal('delete'), kind: z.enum(['Workload', 'Device']), name: NameSchema }),
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
});

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
  LogsRequestFrameSchema, ExecRequestFrameSchema, StreamCancelFrameSchema,
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

export const JoinRequestSchema = z.strictObject({ node: NameSchema, token: z.string().min(1).max(512) });
export const JoinResponseSchema = z.strictObject({ node: NameSchema, credential: z.string() });

export const HUB_PATHS = { join: '/hub/v1/join', connect: '/hub/v1/connect' } as const;
export const NODE_HEADER = 'x-edgefleet-node';

// ---- parsing helpers ------------------------------------------------------------------------

export type FrameParse<T> = { ok: true; frame: T } | { ok: false; error: ErrorFrame };

/** Parses a raw text frame. The error names the first offending field. */
export function parseFrame<T>(schema: z.ZodType<T>, raw: string): FrameParse<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return { ok: false, error: { type: 'error', code: 'bad_frame', message: `malformed JSON: ${(err as Error).message}` } };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, frame: parsed.data };
  const issue = parsed.error.issues[0]!;
  const field = issue.path.join('.');
  return {
    ok: false,
    error: { type: 'error', code: 'bad_frame', message: `${field ? `${field}: ` : ''}${issue.message}`, ...(field ? { field } : {}) },
  };
}
