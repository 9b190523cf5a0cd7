import { apiErrorCodeFor, type ApiErrorCode, type ErrorBody } from '../../protocol/index.js';

/**
 * An error cloudcore's HTTP routes (the operator API, the hub's join) raise on purpose: its
 * message is meant for the client, and `field` names the one field at fault, when there is one.
 * `apiCode` is the finer code of protocol/apiErrors.ts when the status alone does not say it
 * (not `code`: fastify sets `code` on the errors it wraps, e.g. FST_ERR_VALIDATION).
 */
export class ApiError extends Error {
  constructor(readonly statusCode: number, message: string, readonly field?: string, readonly apiCode?: ApiErrorCode) {
    super(message);
  }
}

/** The body of every error answer of cloudcore's HTTP surfaces (protocol/apiErrors.ts). */
export function errorBody(statusCode: number, error: string, opts: { field?: string | undefined; code?: ApiErrorCode | undefined } = {}): ErrorBody {
  const body: ErrorBody = { error, code: opts.code ?? apiErrorCodeFor(statusCode) };
  if (opts.field !== undefined) body.field = opts.field;
  return body;
}
