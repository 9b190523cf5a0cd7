import { z } from 'zod';

/**
 * The replica-to-replica wire (`/peer/v1/…` on every replica's normal HTTPS port): what both
 * peerPlugin (the answering side) and PeerClient (the asking side) parse, in one place.
 */

export const PEER_PREFIX = '/peer/v1';

/**
 * Carries the asking replica's operator request id, so the frame the edge receives (and logs)
 * has the id of the audit record written where the operator asked.
 */
export const REQUEST_ID_HEADER = 'x-edgefleet-request-id';

/** A frame id the hub accepts as is (operatorRequests.ts takes 1..64 characters). */
export const PeerRequestIdSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1 to 64 letters, digits or ._:-');

/** Loose: the validated headers replace the request's, and the others (authorization, …) must stay. */
export const PeerHeadersSchema = z.looseObject({ [REQUEST_ID_HEADER]: PeerRequestIdSchema.optional() });

/**
 * A log stream between replicas is NDJSON: `{lines}` records, then exactly one `{end, error?}`.
 * Plain text could not tell a workload's own line from the end of the stream or an edge error.
 */
export const PeerLogRecordSchema = z.union([
  z.strictObject({ lines: z.array(z.string()) }),
  z.strictObject({ end: z.literal(true), error: z.string().optional() }),
]);
export type PeerLogRecord = z.infer<typeof PeerLogRecordSchema>;

/** One record may hold a whole batch of lines from the edge; beyond this the stream is broken. */
export const MAX_PEER_LOG_RECORD_BYTES = 8 * 1024 * 1024;

/**
 * A followed log can be silent for hours; the answering replica sends an empty `{lines: []}` this
 * often so the asking one can tell a quiet log from a replica whose host died without closing.
 */
export const PEER_LOG_HEARTBEAT_MS = 15_000;
/** Silence after which the asking replica ends a peer's log stream (three heartbeats missed). */
export const PEER_LOG_IDLE_MS = 3 * PEER_LOG_HEARTBEAT_MS;
