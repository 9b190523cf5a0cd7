import { z } from 'zod';

/**
 * Every failure of cloudcore's REST API is one JSON body, `{error, code, field?}`: `error` is
 * written for a person, `code` is for programs (stable across versions, unlike the wording),
 * `field` names the one field at fault. The codes are few and follow the HTTP status, with a
 * finer code where a client would act differently (docs/api.md lists them).
 */
export const API_ERROR_CODES = {
  EF_INVALID: 'the request is malformed or a field is invalid (400); `field` names it when it is one field',
  EF_UNAUTHENTICATED: 'no bearer token, or not one cloudcore knows (401)',
  EF_FORBIDDEN: 'the token\'s role may not do this (403)',
  EF_NOT_FOUND: 'no such object, or no such route (404)',
  EF_CONFLICT: 'the object changed since it was read (stale resourceVersion or If-Match), already exists, or is in a state that refuses the request (409)',
  EF_GONE: 'the revision to watch from was compacted: list again and watch from the new resourceVersion (410)',
  EF_PRECONDITION_FAILED: 'a precondition header did not hold (412)',
  EF_BODY_TOO_LARGE: 'the request body is larger than the API accepts (413)',
  EF_UNSUPPORTED_MEDIA_TYPE: 'the request body is not JSON (415)',
  EF_TOO_MANY_REQUESTS: 'too many requests or failed logins: retry later (429)',
  EF_BAD_CERTIFICATE_REQUEST: 'the CSR is malformed, not self-signed by its key, uses a key not accepted, or names another subject (400)',
  EF_NODE_CERT_EXPIRED: 'the node certificate expired longer ago than the grace window allows: the node needs a new join token (401)',
  EF_UNREADABLE_OBJECT: 'the store holds an object it cannot read: `edgectl get unreadable` (500)',
  EF_INTERNAL: 'cloudcore failed; its log says why (500)',
  EF_UNAVAILABLE: 'cloudcore or the node the request needs cannot serve it now (503): retry',
  EF_EDGE_TIMEOUT: 'the node did not answer in time (504)',
} as const;

export type ApiErrorCode = keyof typeof API_ERROR_CODES;
export const ApiErrorCodeSchema = z.enum(Object.keys(API_ERROR_CODES) as [ApiErrorCode, ...ApiErrorCode[]]);

const CODE_BY_STATUS: Record<number, ApiErrorCode> = {
  400: 'EF_INVALID', 401: 'EF_UNAUTHENTICATED', 403: 'EF_FORBIDDEN', 404: 'EF_NOT_FOUND', 409: 'EF_CONFLICT',
  410: 'EF_GONE', 412: 'EF_PRECONDITION_FAILED', 413: 'EF_BODY_TOO_LARGE', 415: 'EF_UNSUPPORTED_MEDIA_TYPE',
  429: 'EF_TOO_MANY_REQUESTS', 500: 'EF_INTERNAL', 503: 'EF_UNAVAILABLE', 504: 'EF_EDGE_TIMEOUT',
};

/** The code of an HTTP status without a finer one: other 4xx read as EF_INVALID, other 5xx as EF_INTERNAL. */
export function apiErrorCodeFor(status: number): ApiErrorCode {
  return CODE_BY_STATUS[status] ?? (status >= 500 ? 'EF_INTERNAL' : 'EF_INVALID');
}

/**
 * The error body. `code` is read leniently (any string) so an older edgectl still prints the
 * message of a newer cloudcore's new code.
 */
export const ErrorBodySchema = z.object({ error: z.string(), code: z.string(), field: z.string().optional() });
export type ErrorBody = { error: string; code: ApiErrorCode; field?: string };
