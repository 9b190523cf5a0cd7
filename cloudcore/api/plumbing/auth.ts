import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Store } from '../../store/store.js';
import { looksLikeNamedToken, verifyOperatorToken } from '../rules/operatorTokens.js';
import { ApiError } from './errors.js';
import { sharedScope } from './sharedScope.js';

/**
 * Operator authentication: `Authorization: Bearer <token>` → who and which role. Two tokens
 * are generated at first start (the bootstrap: `bootstrap-admin`, `bootstrap-readonly`); named
 * ones (rules/operatorTokens.ts) live in the store. Admin may do everything, readonly only GET
 * (and HEAD); routes that register `requireAdmin` are admin-only even for GET. Registered with
 * `sharedScope`, so it guards every route of the scope that registers it.
 */

export type ApiRole = 'admin' | 'readonly';

export interface ApiTokens {
  admin: string;
  readonly: string;
}

/** Who a request came from, as the audit log names it (never the token itself). */
export interface OperatorPrincipal {
  /** A named token's id; the bootstrap tokens' ids are their names. */
  tokenId: string;
  tokenName: string;
  role: ApiRole;
}

export const BOOTSTRAP_NAMES: Record<ApiRole, string> = { admin: 'bootstrap-admin', readonly: 'bootstrap-readonly' };

const READ_METHODS = new Set(['GET', 'HEAD']);

/** The token in an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Constant-time match of `presented` against both bootstrap tokens. Hashing first gives equal
 * lengths for timingSafeEqual, and both comparisons always run so timing does not tell which
 * role matched.
 */
export function roleForToken(tokens: ApiTokens, presented: string): ApiRole | undefined {
  const candidate = digest(presented);
  const isAdmin = timingSafeEqual(candidate, digest(tokens.admin));
  const isReadonly = timingSafeEqual(candidate, digest(tokens.readonly));
  if (isAdmin) return 'admin';
  if (isReadonly) return 'readonly';
  return undefined;
}

/** What `role` may do: pure, so the rule is visible in one place. Throws 403. */
export function permit(principal: OperatorPrincipal, method: string, adminOnly = false): void {
  if (principal.role === 'admin') return;
  if (adminOnly) throw new ApiError(403, `${principal.tokenName} has the readonly role; this route needs an admin token`);
  if (!READ_METHODS.has(method)) {
    throw new ApiError(403, `${principal.tokenName} has the readonly role and may only read; ${method} needs an admin token`);
  }
}

/** Bootstrap tokens from the data dir, and named ones from the store (when given one). */
export class OperatorAuth {
  constructor(private readonly tokens: ApiTokens, private readonly store?: Store, private readonly onError?: (err: unknown) => void) {
    if (!tokens.admin || !tokens.readonly) throw new Error('OperatorAuth: both the admin and the readonly token must be non-empty');
    if (tokens.admin === tokens.readonly) throw new Error('OperatorAuth: the admin and readonly tokens must differ');
  }

  /** The principal of an Authorization header; 401 when there is none or it is not a valid token. */
  async authenticate(authorization: string | undefined, now = new Date()): Promise<OperatorPrincipal> {
    const token = bearerToken(authorization);
    if (token === undefined) throw new ApiError(401, 'missing bearer token: send Authorization: Bearer <token>');
    const role = roleForToken(this.tokens, token);
    if (role !== undefined) return { tokenId: BOOTSTRAP_NAMES[role], tokenName: BOOTSTRAP_NAMES[role], role };
    if (this.store && looksLikeNamedToken(token)) {
      const named = await verifyOperatorToken(this.store, token, now, this.onError);
      if (named) return { tokenId: named.id, tokenName: named.name, role: named.role };
      // One message for unknown, revoked and expired: the caller learns nothing about which ids exist.
      throw new ApiError(401, 'unknown, expired or revoked bearer token');
    }
    throw new ApiError(401, 'unknown bearer token');
  }
}

/** Who each authenticated request came from (for the audit log): set before the role check, so refused ones are named too. */
const principals = new WeakMap<FastifyRequest, OperatorPrincipal>();

export function principalOf(request: FastifyRequest): OperatorPrincipal | undefined {
  return principals.get(request);
}

export const bearerAuth = sharedScope<{ auth: OperatorAuth }>(async (app, { auth }) => {
  app.addHook('onRequest', async (request) => {
    const principal = await auth.authenticate(request.headers.authorization);
    principals.set(request, principal);
    permit(principal, request.method);
  });
});

/** For a plugin's own scope: its routes are admin-only, reads included (tokens, the audit log). */
export async function requireAdmin(request: FastifyRequest): Promise<void> {
  const principal = principals.get(request);
  if (!principal) throw new ApiError(401, 'missing bearer token: send Authorization: Bearer <token>');
  permit(principal, request.method, true);
}
