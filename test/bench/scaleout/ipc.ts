import { z } from 'zod';

/**
 * The messages between the scale-out coordinator and its edge workers (child_process.fork, IPC
 * channel). Both sides parse what they receive: a worker is another process, and a message
 * that does not parse is a bug worth a loud error, not a silent undefined.
 *
 * Times that cross the boundary are absolute (`performance.timeOrigin + performance.now()`,
 * ms since the epoch with sub-ms precision): every process on one machine shares the clock, so
 * the coordinator can subtract its own t0 from a worker's ack time.
 */

export const ReplicaRefSchema = z.strictObject({ url: z.string().url(), adminToken: z.string().min(1) });
export type ReplicaRef = z.infer<typeof ReplicaRefSchema>;

const SetupSchema = z.strictObject({
  type: z.literal('setup'),
  /** Each node with the index (into `replicas`) of the replica it joins and links to. */
  nodes: z.array(z.strictObject({ node: z.string().min(1), replica: z.number().int().nonnegative() })).min(1),
  replicas: z.array(ReplicaRefSchema).min(1),
  heartbeatMs: z.number().int().positive(),
  restConcurrency: z.number().int().positive(),
  connectConcurrency: z.number().int().positive(),
});

const ArmSchema = z.strictObject({
  type: z.literal('arm'), waitId: z.string().min(1), app: z.string().min(1), marker: z.string().min(1), timeoutMs: z.number().positive(),
});

/** Moves every session of replica `from` to the `to` replicas (round-robin), as an edge fails over to its next URL. */
const MoveSchema = z.strictObject({
  type: z.literal('move'), from: z.number().int().nonnegative(), to: z.array(z.number().int().nonnegative()).min(1), timeoutMs: z.number().positive(),
});

export const WorkerRequestSchema = z.discriminatedUnion('type', [
  SetupSchema,
  z.strictObject({ type: z.literal('connect') }),
  z.strictObject({ type: z.literal('sample') }),
  ArmSchema,
  z.strictObject({ type: z.literal('collect'), waitId: z.string().min(1) }),
  MoveSchema,
  z.strictObject({ type: z.literal('stop') }),
]);
export type WorkerRequest = z.infer<typeof WorkerRequestSchema>;

export const RequestEnvelopeSchema = z.strictObject({ id: z.number().int(), request: WorkerRequestSchema });
export type RequestEnvelope = z.infer<typeof RequestEnvelopeSchema>;

const TallySchema = z.strictObject({ frames: z.number(), payloadBytes: z.number(), headerBytes: z.number() });

export const WorkerSampleSchema = z.strictObject({
  stats: z.strictObject({
    connects: z.number(), syncFrames: z.number(), snapshots: z.number(), changesReceived: z.number(),
    upstreamSent: z.number(), errorsFromCloud: z.number(), bytesIn: z.number(), bytesOut: z.number(),
  }),
  wire: z.strictObject({
    out: z.record(z.string(), TallySchema), in: z.record(z.string(), TallySchema),
    socketBytesWritten: z.number(), socketBytesRead: z.number(),
  }),
  self: z.strictObject({ at: z.number(), rssBytes: z.number(), cpuSeconds: z.number() }),
  foreignObjects: z.number(),
  edges: z.number().int(),
  /** Links connected now, by the replica they are linked to. */
  connectedByReplica: z.array(z.number().int()),
});
export type WorkerSample = z.infer<typeof WorkerSampleSchema>;

export const SetupResultSchema = z.strictObject({ mintMs: z.number(), joinMs: z.number() });
export const ConnectResultSchema = z.strictObject({ connectMs: z.number() });
/** Absolute time each edge held the marker, in the worker's edge order. */
export const CollectResultSchema = z.strictObject({ ackedAt: z.array(z.number()) });
export const MoveResultSchema = z.strictObject({
  moved: z.number().int(),
  /** Absolute time each moved edge got its welcome from the new replica. */
  welcomedAt: z.array(z.number()),
  /** Welcomes by mode on the moved links: a resume continues from the edge's revision. */
  resumes: z.number().int(),
  snapshots: z.number().int(),
  /** Moved links not welcomed within the bound. */
  notWelcomed: z.number().int(),
});
export type MoveResult = z.infer<typeof MoveResultSchema>;

export const ReplyEnvelopeSchema = z.union([
  z.strictObject({ kind: z.literal('reply'), id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ kind: z.literal('reply'), id: z.number().int(), ok: z.literal(false), error: z.string() }),
  z.strictObject({ kind: z.literal('progress'), line: z.string() }),
]);
export type ReplyEnvelope = z.infer<typeof ReplyEnvelopeSchema>;
