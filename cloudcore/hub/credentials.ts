import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { JoinToken, Node, NodeCredential } from '../../protocol/index.js';
import { ConflictError, NotFoundError, type Store } from '../store/store.js';

/**
 * Join tokens and node credentials. A join token is `<id>.<secret>` (as kubeadm's), bound to
 * one node name, single use, with an expiry; only a hash of the secret is stored. Presenting
 * it once yields a per-node credential (`<node>.<secret>`), also stored hashed, which the edge
 * keeps in its database and presents on every connect.
 */

export class JoinError extends Error {
  constructor(message: string, readonly statusCode: 401 | 403 | 409) { super(message); }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function emptyNodeStatus(now: Date): Node['status'] {
  return { phase: 'Pending', since: now.toISOString(), lastSeen: null, epoch: null, ackedRevision: 0, agent: null };
}

/** Creates a token for `node` and makes sure a (Pending) Node object exists so it can be labelled before joining. */
export async function mintJoinToken(store: Store, node: string, ttlSeconds: number, now = new Date()): Promise<{ token: string; expiresAt: string }> {
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
  if (!(await store.get('Node', node))) {
    try {
      await store.create({ kind: 'Node', metadata: { name: node }, spec: {}, status: emptyNodeStatus(now) });
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err; // created concurrently: fine
    }
  }
  return { token: `${id}.${secret}`, expiresAt };
}

/**
 * Checks a join token for `node` and consumes it (single use: the update carries the read
 * resourceVersion, so two concurrent joins cannot both succeed). Returns a new credential.
 */
export async function redeemJoinToken(store: Store, node: string, token: string, now = new Date()): Promise<string> {
  const [id, secret] = token.split('.');
  if (!id || !secret || !/^[0-9a-f]+$/.test(id)) throw new JoinError('join token is malformed: expected <id>.<secret>', 401);
  const record = await store.get('JoinToken', id);
  if (!record || !sameHash(record.spec.secretHash, sha256(secret))) throw new JoinError('join token is not valid', 401);
  if (record.spec.node !== node) throw new JoinError(`join token is bound to node "${record.spec.node}", not "${node}"`, 403);
  if (record.status.usedAt) throw new JoinError(`join token was already used at ${record.status.usedAt}`, 401);
  if (Date.parse(record.spec.expiresAt) <= now.getTime()) throw new JoinError(`join token expired at ${record.spec.expiresAt}`, 401);
  try {
    await store.update({ ...record, status: { usedAt: now.toISOString() } });
  } catch (err) {
    if (err instanceof ConflictError) throw new JoinError('join token was already used', 401);
    throw err;
  }
  const credentialSecret = randomBytes(24).toString('hex');
  const credential: NodeCredential = {
    kind: 'NodeCredential',
    metadata: { name: node },
    spec: { node, secretHash: sha256(credentialSecret), issuedAt: now.toISOString(), certificates: [] },
  };
  // Re-joining a node (e.g. after its disk was wiped) replaces the old credential.
  const existing = await store.get('NodeCredential', node);
  if (existing) await store.update({ ...credential, metadata: { ...existing.metadata } });
  else await store.create(credential);
  if (!(await store.get('Node', node))) {
    await store.create({ kind: 'Node', metadata: { name: node }, spec: {}, status: emptyNodeStatus(now) });
  }
  return `${node}.${credentialSecret}`;
}

/** Returns the node a credential belongs to, or undefined if it is not valid. */
export async function verifyNodeCredential(store: Store, credential: string): Promise<string | undefined> {
  const dot = credential.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const node = credential.slice(0, dot);
  const secret = credential.slice(dot + 1);
  let record: NodeCredential | undefined;
  try {
    record = await store.get('NodeCredential', node);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  if (!record?.spec.secretHash || !sameHash(record.spec.secretHash, sha256(secret))) return undefined;
  return node;
}
