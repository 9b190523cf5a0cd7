import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  BearerIdentitySchema, caBundlePin, CertificateIdentitySchema, HUB_PATHS, isUntrustedCertificate, NameSchema, newKeyAndCsr, NODE_CERT_ORG, parseJoinToken,
} from '../../protocol/index.js';
import { issuedCertificateProblem } from './certificateCheck.js';
import { answerError, hubRequest, HubUnreachableError, type HubAnswer, type HubTls } from './hubRequest.js';
import type { StoredIdentity } from './identityStore.js';

/**
 * A refusal that retrying cannot fix (bad, used or other-node token; the pin does not match; a
 * renewal the cloud answers 401/403). `status` and `code` are the cloud's, when it answered.
 */
export class JoinRefusedError extends Error {
  constructor(message: string, readonly status?: number, readonly code?: string) { super(message); }
}

export interface JoinOptions {
  cloudUrl: string;
  node: string;
  token: string;
  /** An unpinned token over https is refused unless the operator allows it (then the system's CAs decide). */
  allowUnpinnedToken: boolean;
  warn: (obj: object, msg: string) => void;
  now?: () => Date;
}

/** A cloudcore that predates credential expiry answers without `expiresAt`. */
const LegacyBearerSchema = z.strictObject({ node: NameSchema, credential: z.string().min(1) });
const JoinAnswerSchema = z.union([CertificateIdentitySchema, BearerIdentitySchema, LegacyBearerSchema]);

export function tokenSha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Fetches the CA bundle WITHOUT verifying the server: its pin is checked next, and nothing secret is sent. */
export async function fetchCaBundle(cloudUrl: string): Promise<string> {
  const url = new URL(HUB_PATHS.ca, cloudUrl);
  const answer = await hubRequest(url, { method: 'GET', tls: { rejectUnauthorized: false }, maxBytes: 256 * 1024 });
  if (answer.status !== 200) throw new Error(`cloudcore at ${url.origin} answered HTTP ${answer.status} for its CA bundle (${HUB_PATHS.ca})`);
  return answer.text;
}

/** Why a fetched bundle is not the one the token was made for, or null when it is. */
export function pinMismatch(cloudUrl: string, bundle: string, pin: string): string | null {
  const got = caBundlePin(bundle);
  if (got === pin) return null;
  return `the server at ${new URL(cloudUrl).origin} presented a CA bundle whose SHA-256 is ${got}; the join token pins ${pin}: `
    + 'this is not the cloud the token was made for (or its CA changed since); nothing was sent to it';
}

/**
 * Presents a join token once and returns the identity to commit. Over https with a pinned token:
 * CA bundle → pin check → key and CSR made here → join verified against that bundle. A refusal
 * is final (JoinRefusedError); a network failure is a plain Error so the caller retries.
 */
export async function joinCloud(opts: JoinOptions): Promise<StoredIdentity> {
  const now = opts.now ?? (() => new Date());
  const https = new URL(opts.cloudUrl).protocol === 'https:';
  const parsed = parseJoinToken(opts.token);
  let tls: HubTls | undefined;
  if (https) {
    if (!parsed) throw new JoinRefusedError('join refused: the join token is not in a known format (EF1-<pin>-<id>.<secret>, or <id>.<secret>); nothing was sent');
    if (parsed.pin !== null) {
      const bundle = await fetchCaBundle(opts.cloudUrl);
      const mismatch = pinMismatch(opts.cloudUrl, bundle, parsed.pin);
      if (mismatch) throw new JoinRefusedError(`join refused: ${mismatch}`);
      tls = { ca: bundle };
    } else if (!opts.allowUnpinnedToken) {
      throw new JoinRefusedError('join refused: the join token does not pin the cloud\'s CA (it is <id>.<secret>, not EF1-<pin>-…), so this node cannot tell '
        + 'the cloud from an impostor; create a new token with `edgectl token create NODE`, or start edgecore with --allow-unpinned-token to trust the system\'s CAs instead; nothing was sent');
    } else {
      opts.warn({}, 'joining with an unpinned token (--allow-unpinned-token): the cloud is verified only by the system\'s CAs and NODE_EXTRA_CA_CERTS');
    }
  }
  const request = https ? await newKeyAndCsr(opts.node, NODE_CERT_ORG) : undefined;
  let answer: HubAnswer;
  try {
    answer = await hubRequest(new URL(HUB_PATHS.join, opts.cloudUrl), {
      method: 'POST',
      body: { node: opts.node, token: opts.token, ...(request ? { csr: request.csrPem } : {}) },
      ...(tls ? { tls } : {}),
    });
  } catch (err) {
    // Pinned: only the bundle is trusted, so NODE_EXTRA_CA_CERTS (describeCloudError's advice) cannot help.
    if (tls && err instanceof HubUnreachableError && isUntrustedCertificate(err)) {
      throw new Error(`cannot join cloudcore at ${new URL(opts.cloudUrl).origin}: its TLS certificate is not signed by a CA in the CA bundle the token pins (${err.code}); `
        + 'a cloudcore with an operator\'s own server certificate must serve that certificate\'s CA in its bundle (cloudcore --ca-extra-trust)');
    }
    throw err;
  }
  return identityFromAnswer(answer, { node: opts.node, keyPem: request?.keyPem, joinTokenSha256: tokenSha256(opts.token), now: now(), what: 'join' });
}

/**
 * The identity in a join or renew answer, checked: a certificate must be for this node and our
 * new key and chain to the bundle it came with. 4xx → JoinRefusedError (final); 5xx or an
 * answer that fails a check → Error (retry).
 */
export function identityFromAnswer(answer: HubAnswer, ctx: { node: string; keyPem: string | undefined; joinTokenSha256: string | null; now: Date; what: 'join' | 'renewal' }): StoredIdentity {
  if (answer.status < 200 || answer.status >= 300) {
    const { message, code } = answerError(answer);
    if (answer.status >= 400 && answer.status < 500) throw new JoinRefusedError(`${ctx.what} refused: ${message}`, answer.status, code);
    throw new Error(`${ctx.what} failed: ${message}`);
  }
  const parsed = JoinAnswerSchema.safeParse(answer.json);
  if (!parsed.success || parsed.data.node !== ctx.node) throw new Error(`${ctx.what} failed: unexpected answer from cloud`);
  const data = parsed.data;
  if ('certificate' in data) {
    if (ctx.keyPem === undefined) throw new Error(`${ctx.what} failed: the cloud answered a certificate to a request without a CSR`);
    const problem = issuedCertificateProblem({ node: ctx.node, certPem: data.certificate, keyPem: ctx.keyPem, caBundle: data.caBundle, now: ctx.now });
    if (problem) throw new Error(`${ctx.what} failed: ${problem}; nothing was committed`);
    return { mode: 'certificate', keyPem: ctx.keyPem, certPem: data.certificate, caBundle: data.caBundle, joinTokenSha256: ctx.joinTokenSha256 };
  }
  const expiresAt = 'expiresAt' in data && !Number.isNaN(Date.parse(data.expiresAt)) ? data.expiresAt : null;
  return { mode: 'bearer', credential: data.credential, expiresAt, issuedAt: ctx.now.toISOString(), joinTokenSha256: ctx.joinTokenSha256 };
}

/**
 * A bearer join over plain HTTP, as the fan-out benchmark's simulated edges make it: the
 * credential, or an error if the cloud answered a certificate.
 */
export async function joinForCredential(cloudUrl: string, node: string, token: string): Promise<string> {
  const joined = await joinCloud({ cloudUrl, node, token, allowUnpinnedToken: false, warn: () => undefined });
  if (joined.mode !== 'bearer') throw new Error(`${node} joined with a certificate; the simulated edges link with a bearer credential (plain HTTP cloud)`);
  return joined.credential;
}
