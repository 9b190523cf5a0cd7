import type { FastifyInstance } from 'fastify';
import type { ErrorBody } from '../../../protocol/index.js';
import { ApiError, errorBody } from '../../http/apiError.js';
import { StoreError, UnreadableError } from '../../store/store.js';

/**
 * Every API failure leaves as `{error, code, field?}` (protocol/apiErrors.ts) with the fitting
 * status (docs/api.md). `describeError` is the pure mapping; `registerErrorHandling` wires it
 * into a fastify scope.
 */

export { ApiError } from '../../http/apiError.js';

export interface DescribedError {
  statusCode: number;
  body: ErrorBody;
  /** True when the cause is ours, not the client's: log it, tell the client nothing more. */
  internal: boolean;
}

/** Largest request body the API accepts (an App is a few KiB; this leaves ample room). */
export const API_BODY_LIMIT_BYTES = 1024 * 1024;

/** Fastify's own request errors, reworded so an operator knows what to fix. */
const FASTIFY_ERRORS: Record<string, { statusCode: number; error: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { statusCode: 413, error: `request body is larger than the limit of ${API_BODY_LIMIT_BYTES} bytes` },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { statusCode: 415, error: 'request body must be JSON: send content-type: application/json' },
  FST_ERR_CTP_INVALID_JSON_BODY: { statusCode: 400, error: 'request body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { statusCode: 400, error: 'request body is empty but content-type is application/json' },
};

function errorCode(err: Error): string | undefined {
  return 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function errorStatus(err: Error): number | undefined {
  return 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : undefined;
}

const INTERNAL: DescribedError = { statusCode: 500, body: errorBody(500, 'internal error'), internal: true };

export function describeError(err: unknown): DescribedError {
  if (err instanceof ApiError) {
    const body = errorBody(err.statusCode, err.message, { field: err.field, code: err.apiCode });
    // Raised on purpose, even a 5xx (a node not connected, an edge that did not answer): the
    // client is told why, and it is no fault of this server's, so it is not logged as one.
    return { statusCode: err.statusCode, body, internal: false };
  }
  if (err instanceof UnreadableError) {
    // Ours, not the client's, but the operator is the one who can repair it: say how.
    const first = err.objects[0]!;
    const how = `remove ${err.objects.length === 1 ? 'it' : 'each'} with \`edgectl delete unreadable ${first.kind} ${first.name}\`` +
      ' (DELETE /api/v1/unreadable/{kind}/{name}), then apply it again; `edgectl get unreadable` lists every one';
    return { statusCode: 500, body: errorBody(500, `${err.message}; ${how}`, { code: 'EF_UNREADABLE_OBJECT' }), internal: true };
  }
  if (err instanceof StoreError) {
    // Store messages are written for clients (e.g. "store is closed" → 503), so they pass through.
    return { statusCode: err.statusCode, body: errorBody(err.statusCode, err.message), internal: err.statusCode >= 500 };
  }
  if (!(err instanceof Error)) return INTERNAL;
  const known = FASTIFY_ERRORS[errorCode(err) ?? ''];
  if (known) return { statusCode: known.statusCode, body: errorBody(known.statusCode, known.error), internal: false };
  // Other client errors fastify raises (bad content-length, malformed URL, …) carry a usable message.
  const status = errorStatus(err);
  if (status !== undefined && status >= 400 && status < 500) {
    return { statusCode: status, body: errorBody(status, err.message), internal: false };
  }
  return INTERNAL;
}

/** Sends every error and unknown route of `app`'s scope as `{error, code, field?}`. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const described = describeError(err);
    if (described.internal) request.log.error({ err }, 'request failed');
    // A deliberate 5xx (503 node not connected, 504 edge timeout) is worth a line, not a stack.
    else if (described.statusCode >= 500) request.log.warn({ statusCode: described.statusCode, reason: described.body.error }, 'request not served');
    if (described.statusCode === 401) reply.header('www-authenticate', 'Bearer');
    return reply.code(described.statusCode).send(described.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body = errorBody(404, `no route for ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(404).send(body);
  });
}
