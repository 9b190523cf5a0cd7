import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.js';
import { sharedScope } from './sharedScope.js';

/**
 * Operator authentication: `Authorization: Bearer <token>` → role. Admin may do everything,
 * readonly only GET (and HEAD). Registered with `sharedScope`, so it guards every route of the
 * scope that registers it.
 */

export type ApiRole = 'admin' | 'readonly';

export interface ApiTokens {
  admin: string;
  readonly: string;
}

const READ_METHODS = new Set(['GET', 'HEAD']);

/** The token in an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Constant-time match of `presented` against both tokens. Hashing first gives equal lengths for
 * timingSafeEqual, and both comparisons always run so timing does not tell which role matched.
 */
export function roleForToken(tokens: ApiTokens, presented: string): ApiRole | undefined {
  const candidate = digest(presented);
  const isAdmin = timingSafeEqual(candidate, digest(tokens.admin));
  const isReadonly = timingSafeEqual(candidate, digest(tokens.readonly));
  if (isAdmin) return 'admin';
  if (isReadonly) return 'readonly';
  return undefined;
}

/** Who may do what: pure, so the rule is visible in one place. */
export function authorize(tokens: ApiTokens, authorization: string | undefined, method: string): ApiRole {
  const token = bearerToken(authorization);
  if (token === undefined) throw new ApiError(401, 'missing bearer token: send Authorization: Bearer <token>');
  const role = roleForToken(tokens, token);
  if (role === undefined) throw new ApiError(401, 'unknown bearer token');
  if (role === 'readonly' && !READ_METHODS.has(method)) {
    throw new ApiError(403, `the readonly token may only read; ${method} needs the admin token`);
  }
  return role;
}

export const bearerAuth = sharedScope<{ tokens: ApiTokens }>(async (app, { tokens }) => {
  if (!tokens.admin || !tokens.readonly) throw new Error('bearerAuth: both the admin and the readonly token must be non-empty');
  if (tokens.admin === tokens.readonly) throw new Error('bearerAuth: the admin and readonly tokens must differ');
  app.addHook('onRequest', async (request) => {
    authorize(tokens, request.headers.authorization, request.method);
  });
});
