import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { formatJoinToken, parseJoinToken, type JoinToken, type Node, type NodeCredential } from '../../protocol/index.js';
import type { IssuedCertificate } from '../pki/certificateAuthority.js';
import { DEFAULT_NODE_CERT_LIFETIME_SECONDS, keptCertificates } from '../../protocol/certificatePolicy.js';
import { readModifyWrite } from '../store/readModifyWrite.js';
import { ConflictError, NotFoundError, type Store } from '../store/store.js';

/**
 * Join tokens and node credentials. A join token is `EF1-<pin>-<id>.<secret>` over HTTPS (the pin
 * is the CA bundle's hash, checked by the edge) or `<id>.<secret>` over plain HTTP; it is bound
 * to one node name, single use, with an expiry; only a hash of the secret is stored. Redeeming it
 * gives the node its identity, kept in the node's NodeCredential object: the serials of its
 * certificates (an allow-list; HTTPS), or the hash of a bearer credential that expires (plain HTTP).
 */

export class JoinError extends Error {
  constructor(message: string, readonly statusCode: 401 | 403 | 409) { super(message); }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function sameHash(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function emptyNodeStatus(now: Date): Node['status'] {
  return { phase: 'Pending', since: now.toISOString(), lastSeen: null, epoch: null, ackedRevision: 0, agent: null };
}

/**
 * Creates a token for `node` (pinned to `pin` when cloudcore serves HTTPS) and makes sure a
 * (Pending) Node object exists so it can be labelled before joining.
 */
export async function mintJoinToken(store: Store, node: string, ttlSeconds: number, pin: string | null, now = new Date()): Promise<{ token: string; expiresAt: string }> {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(16).toString('hex');
  const expiresAt = new Date(now.getTime() + ttlSeconds * 1000).toISOString();
  const record: JoinToken = {
    kind: 'JoinToken',
    metadata: { name: id },
    spec: { node, secretHash: sha256(secret), expiresAt },
    status: { usedAt: null },
  };
  await store.create(record);
  await ensureNode(store, node, now);
  return { token: formatJoinToken(pin, id, secret), expiresAt };
}

/**
 * Checks a join token for `node` and consumes it (single use: the update carries the read
 * resourceVersion, so two concurrent joins cannot both succeed). The caller then records the
 * identity it issues with `replaceNodeIdentity`.
 */
export async function consumeJoinToken(store: Store, node: string, token: string, now = new Date()): Promise<JoinToken> {
  const parsed = parseJoinToken(token);
  if (!parsed) throw new JoinError('join token is malformed: expected EF1-<pin>-<id>.<secret> or <id>.<secret>', 401);
  const record = await store.get('JoinToken', parsed.id);
  if (!record || !sameHash(record.spec.secretHash, sha256(parsed.secret))) throw new JoinError('join token is not valid', 401);
  if (record.spec.node !== node) throw new JoinError(`join token is bound to node "${record.spec.node}", not "${node}"`, 403);
  if (record.status.usedAt) throw new JoinError(`join token was already used at ${record.status.usedAt}`, 401);
  if (Date.parse(record.spec.expiresAt) <= now.getTime()) throw new JoinError(`join token expired at ${record.spec.expiresAt}`, 401);
  try {
    return await store.update({ ...record, status: { usedAt: now.toISOString() } });
  } catch (err) {
    if (err instanceof ConflictError) throw new JoinError('join token was already used', 401);
    throw err;
  }
}

/**
 * A join: consumes the token, then runs `issue` (sign, record the identity). If `issue` fails —
 * the store timing out under load, etcd losing quorum — the token is given back (compared on the
 * revision that consumed it), so the edge's retry with the same token can succeed. Spent for
 * nothing, it would leave a node that never got an identity unable to join without a new token.
 * An identity `issue` may have recorded before failing is replaced by the retry's.
 */
export async function joinWithToken<T>(store: Store, node: string, token: string, issue: () => Promise<T>, now = new Date()): Promise<T> {
  const consumed = await consumeJoinToken(store, node, token, now);
  try {
    return await issue();
  } catch (err) {
    await store.update({ ...consumed, status: { usedAt: null } }).catch(() => { /* store still down: the token stays spent */ });
    throw err;
  }
}

export type NewIdentity =
  | { kind: 'certificate'; issued: IssuedCertificate }
  | { kind: 'bearer'; lifetimeSeconds: number };

/**
 * A join's identity replaces whatever the node had: every earlier certificate serial and bearer
 * credential stops being accepted (the hub's credential watch ends a link made with one).
 * Returns the bearer credential when one was made.
 */
export async function replaceNodeIdentity(store: Store, node: string, identity: NewIdentity, now = new Date()): Promise<{ credential?: string; expiresAt?: string }> {
  const made = identitySpec(node, identity, now);
  const credential: NodeCredential = { kind: 'NodeCredential', metadata: { name: node }, spec: made.spec };
  const existing = await store.get('NodeCredential', node);
  if (existing) await store.update({ ...credential, metadata: { ...existing.metadata } });
  else await store.create(credential);
  await ensureNode(store, node, now);
  return made.answer;
}

/**
 * A renewal adds the new certificate to the allow-list and keeps older ones until their life
 * and the grace window are over (the edge uses its old one until it has committed the new one);
 * a bearer renewal keeps the replaced credential until its own expiry for the same reason.
 */
export async function renewNodeIdentity(store: Store, node: string, identity: NewIdentity, graceSeconds: number, now = new Date()): Promise<{ credential?: string; expiresAt?: string }> {
  const made = identitySpec(node, identity, now);
  await readModifyWrite(store, 'NodeCredential', node, (current) => {
    const spec: NodeCredential['spec'] = identity.kind === 'certificate'
      ? { ...current.spec, issuedAt: made.spec.issuedAt, certificates: keptCertificates(current.spec.certificates, made.spec.certificates[0]!, now, graceSeconds) }
      : { ...made.spec, previousSecretHash: current.spec.secretHash, previousExpiresAt: current.spec.expiresAt };
    return { ...current, spec };
  }, { absent: () => new JoinError('the node\'s identity was revoked: it needs a new join token', 401) });
  return made.answer;
}

function identitySpec(node: string, identity: NewIdentity, now: Date): { spec: NodeCredential['spec']; answer: { credential?: string; expiresAt?: string } } {
  if (identity.kind === 'certificate') {
    return { spec: { node, issuedAt: now.toISOString(), certificates: [{ serial: identity.issued.serial, notAfter: identity.issued.notAfter }] }, answer: {} };
  }
  const secret = randomBytes(24).toString('hex');
  const expiresAt = new Date(now.getTime() + identity.lifetimeSeconds * 1000).toISOString();
  return {
    spec: { node, secretHash: sha256(secret), issuedAt: now.toISOString(), expiresAt, certificates: [] },
    answer: { credential: `${node}.${secret}`, expiresAt },
  };
}

async function ensureNode(store: Store, node: string, now: Date): Promise<void> {
  if (await store.get('Node', node)) return;
  try {
    await store.create({ kind: 'Node', metadata: { name: node }, spec: {}, status: emptyNodeStatus(now) });
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err; // created concurrently: fine
  }
}

/** The bearer credential's hash when `credential` is a valid, unexpired one (plain-HTTP links). */
export async function verifyNodeCredential(store: Store, credential: string, now = new Date()): Promise<{ node: string; hash: string } | undefined> {
  const dot = credential.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const node = credential.slice(0, dot);
  const hash = sha256(credential.slice(dot + 1));
  let record: NodeCredential | undefined;
  try {
    record = await store.get('NodeCredential', node);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  return record && acceptsBearer(record, hash, now) ? { node, hash } : undefined;
}

/** Whether the record still accepts the bearer credential with this hash (current or replaced, each until its expiry). */
export function acceptsBearer(record: NodeCredential, hash: string, now = new Date()): boolean {
  const alive = (expiresAt: string | undefined) => expiresAt !== undefined && Date.parse(expiresAt) > now.getTime();
  // A credential made before credentials expired has none: it gets a node certificate's default
  // life from its issue, and the edge renews it like any other before then.
  const currentExpiry = record.spec.expiresAt ?? new Date(Date.parse(record.spec.issuedAt) + DEFAULT_NODE_CERT_LIFETIME_SECONDS * 1000).toISOString();
  return (sameHash(record.spec.secretHash, hash) && alive(currentExpiry))
    || (sameHash(record.spec.previousSecretHash, hash) && alive(record.spec.previousExpiresAt));
}

/** Whether the record still accepts the certificate with this serial (the allow-list). */
export function acceptsCertificate(record: NodeCredential | undefined, serial: string): boolean {
  return record?.spec.certificates.some((c) => c.serial === serial) ?? false;
}
