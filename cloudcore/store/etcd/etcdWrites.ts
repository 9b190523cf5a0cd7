import { randomUUID } from 'node:crypto';
import type { ICompare, IKeyValue, IRequestOp } from 'etcd3';
import type { AnyObject, Kind } from '../../../protocol/index.js';
import { describeObject, notFoundMessage, staleVersionMessage, stampCreated, stampUpdated } from '../objectMeta.js';
import { boundNode, ConflictError, FencedError, NotFoundError, StoreError, type WriteGuard } from '../store.js';
import { rangeOne, rangePrefix, type EtcdContext } from './etcdContext.js';

/**
 * The store's writes, each ONE etcd txn (so no object is ever half-written: the object key and
 * its per-node index key change together or not at all). Each compares the object key's
 * create_revision (create) or mod_revision (update, delete) and, in a guarded view, every guard
 * key's create_revision. On failure the txn's else-branch reads those keys back, which says
 * which guard failed (FencedError) or else that the object did (409/404). At most 4 ops a txn, far under
 * etcd's 128-op limit.
 */

/** Writes without a resourceVersion are last-writer-wins; a concurrent write makes them read and try again. */
const UNCONDITIONAL_ATTEMPTS = 20;

interface Outcome { succeeded: boolean; revision: number; objectKv: IKeyValue | undefined; failedGuards: WriteGuard[] }

/**
 * Runs one write txn. `writtenBody` is what the txn puts under the object key (create, update):
 * etcd3 retries a call whose attempt timed out, and when the first attempt had committed, the
 * retry's compare fails against our own write. Finding exactly our body there (a create's body
 * holds its fresh uid) means the write is ours: success at that key's mod_revision, not a 409.
 */
async function commit(
  ctx: EtcdContext, objectKey: string, compare: ICompare[], success: IRequestOp[], guards: readonly WriteGuard[], writtenBody?: string,
): Promise<Outcome> {
  const guardKeys = guards.map((g) => Buffer.from(ctx.keys.relative(g.key)));
  const guardCompares = guards.map((g, i): ICompare => ({ key: guardKeys[i], target: 'Create', result: 'Equal', create_revision: g.createRevision }));
  const failure: IRequestOp[] = [objectKey, ...guardKeys].map((key) => ({ request_range: { key: Buffer.from(key) } }));
  const res = await ctx.calls.run((options) => ctx.kv.txn({ compare: [...compare, ...guardCompares], success, failure }, options));
  const revision = Number(res.header.revision);
  if (res.succeeded) return { succeeded: true, revision, objectKv: undefined, failedGuards: [] };
  const objectKv = res.responses[0]?.response_range.kvs[0];
  if (writtenBody !== undefined && objectKv?.value.toString('utf8') === writtenBody) {
    return { succeeded: true, revision: Number(objectKv.mod_revision), objectKv: undefined, failedGuards: [] };
  }
  const failedGuards = guards.filter((g, i) => Number(res.responses[i + 1]?.response_range.kvs[0]?.create_revision ?? 0) !== g.createRevision);
  return { succeeded: false, revision, objectKv, failedGuards };
}

function put(key: string, value: string): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(value) } };
}

function del(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

function modIs(key: string, modRevision: string): ICompare {
  return { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: modRevision };
}

/** Throws FencedError naming every guard that failed (a view may hold several: the leader's and a node session's). */
function throwIfFenced(outcome: Outcome): void {
  if (outcome.failedGuards.length === 0) return;
  throw new FencedError(outcome.failedGuards.map((g) => g.lostMessage).join('; '));
}

function withRevision<T extends AnyObject>(obj: T, revision: number): T {
  obj.metadata.resourceVersion = revision;
  return obj;
}

export async function createObject<T extends AnyObject>(ctx: EtcdContext, obj: T, guards: readonly WriteGuard[]): Promise<T> {
  const { kind, metadata: { name } } = obj;
  const created = stampCreated(obj, 0, randomUUID(), new Date());
  const key = ctx.keys.object(kind, name);
  const body = ctx.codec.encode(created);
  const node = boundNode(created);
  const success = [put(key, body), ...(node === undefined ? [] : [put(ctx.keys.nodeIndex(node, kind, name), body)])];
  const outcome = await commit(ctx, key, [{ key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 }], success, guards, body);
  if (outcome.succeeded) return withRevision(created, outcome.revision);
  throwIfFenced(outcome);
  throw new ConflictError(`${describeObject(kind, name)} already exists`);
}

export async function updateObject<T extends AnyObject>(ctx: EtcdContext, obj: T, guards: readonly WriteGuard[]): Promise<T> {
  const { kind, metadata: { name, resourceVersion } } = obj;
  return writeOverStored(ctx, kind, name, resourceVersion, guards, 'update', (stored, key) => {
    const next = stampUpdated(obj, stored as T, 0);
    const body = ctx.codec.encode(next);
    const [from, to] = [boundNode(stored), boundNode(next)];
    const success = [put(key, body)];
    // A move is delete-under-old + put-under-new in this one txn: the old node's watch sees the
    // delete (with its last state as prev_kv) and the new node's the create, at one revision.
    if (from !== undefined && from !== to) success.push(del(ctx.keys.nodeIndex(from, kind, name)));
    if (to !== undefined) success.push(put(ctx.keys.nodeIndex(to, kind, name), body));
    return { success, body, result: next };
  });
}

export async function deleteObject(ctx: EtcdContext, kind: Kind, name: string, expectedRv: number | undefined, guards: readonly WriteGuard[]): Promise<AnyObject> {
  return writeOverStored(ctx, kind, name, expectedRv, guards, 'delete', (stored, key) => {
    const node = boundNode(stored);
    return { success: [del(key), ...(node === undefined ? [] : [del(ctx.keys.nodeIndex(node, kind, name))])], result: stored };
  });
}

/**
 * An update or delete: read the stored object, refuse a stale `expectedRv` (409), commit the txn
 * `plan` builds, compared on the mod_revision read. Without `expectedRv` it is last-writer-wins:
 * a concurrent write makes it plan again over what the failed txn read back.
 */
async function writeOverStored<R extends AnyObject>(
  ctx: EtcdContext, kind: Kind, name: string, expectedRv: number | undefined, guards: readonly WriteGuard[], verb: 'update' | 'delete',
  plan: (stored: AnyObject, key: string) => { success: IRequestOp[]; body?: string; result: R },
): Promise<R> {
  const key = ctx.keys.object(kind, name);
  let { kv } = await rangeOne(ctx, key);
  for (let attempt = 0; attempt < UNCONDITIONAL_ATTEMPTS; attempt++) {
    if (!kv) throw new NotFoundError(notFoundMessage(kind, name));
    const storedRevision = Number(kv.mod_revision);
    if (expectedRv !== undefined && expectedRv !== storedRevision) {
      throw new ConflictError(staleVersionMessage(kind, name, expectedRv, storedRevision));
    }
    const { success, body, result } = plan(ctx.codec.decodeOrThrow(kind, name, kv.value, storedRevision), key);
    const outcome = await commit(ctx, key, [modIs(key, kv.mod_revision)], success, guards, body);
    if (outcome.succeeded) return withRevision(result, outcome.revision);
    throwIfFenced(outcome);
    kv = outcome.objectKv;
  }
  throw new ConflictError(`${describeObject(kind, name)} changed under ${UNCONDITIONAL_ATTEMPTS} attempts to ${verb} it; retry`);
}

export async function deleteUnreadableObject(ctx: EtcdContext, kind: Kind, name: string, guards: readonly WriteGuard[]): Promise<{ revision: number }> {
  const key = ctx.keys.object(kind, name);
  const { kv } = await rangeOne(ctx, key);
  if (!kv) throw new NotFoundError(notFoundMessage(kind, name));
  if ('object' in ctx.codec.decode(kind, name, kv.value, Number(kv.mod_revision))) {
    throw new ConflictError(`${describeObject(kind, name)} is readable; delete it the normal way`);
  }
  // The body cannot say which node the object was bound to, so look for its index keys by
  // name (keys only): a repair, not a hot path.
  const suffix = `/${kind}/${name}`;
  const indexes = (await rangePrefix(ctx, ctx.keys.allNodeIndexes(), { keysOnly: true })).kvs
    .map((k) => k.key.toString('utf8'))
    .filter((k) => k.endsWith(suffix) && ctx.keys.parse(k)?.name === name);
  const outcome = await commit(ctx, key, [modIs(key, kv.mod_revision)], [del(key), ...indexes.map(del)], guards);
  if (outcome.succeeded) return { revision: outcome.revision };
  throwIfFenced(outcome);
  throw new ConflictError(`${describeObject(kind, name)} changed while it was being removed; look again`);
}

export function assertStorableName(obj: AnyObject): void {
  if (obj.metadata.name.includes('/')) {
    throw new StoreError(`${describeObject(obj.kind, obj.metadata.name)}: a name may not contain "/"`, 400);
  }
}
