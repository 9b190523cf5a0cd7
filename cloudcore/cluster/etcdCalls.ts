import type { Etcd3, ICompare, IKeyValue, IRequestOp, Watcher } from 'etcd3';
import { prefixEnd } from '../store/etcd/keys.js';
import { rangePaged } from '../store/etcd/pagedRange.js';

/** The range end that makes [key, end) every key starting with `key`: the store's own. */
export { prefixEnd };

/** gRPC call options as etcd3's RPC clients take them (grpc-js is etcd3's dependency, not ours). */
export type CallOptions = NonNullable<Parameters<Etcd3['kv']['range']>[1]>;

/**
 * The small vocabulary every cluster module speaks to etcd with: raw RPCs (so lease ids, compares
 * and revisions are ours to see, not hidden in a builder), each with a deadline, because with no
 * quorum an etcd call otherwise hangs ~12 s before it fails, longer than any lease we keep.
 */

/** Default deadline of one etcd call: well under the shortest lease TTL (1 s is etcd's minimum). */
export const DEFAULT_CALL_MS = 2_000;

export function deadline(ms = DEFAULT_CALL_MS): CallOptions {
  return { deadline: Date.now() + ms };
}

/** `<prefix><relative>`: cluster keys are named relative to the store prefix, as WriteGuard.key is. */
export function clusterKey(prefix: string, relative: string): Buffer {
  return Buffer.from(prefix + relative, 'utf8');
}

export function createRevisionIs(key: Buffer, revision: number): ICompare {
  return { key, target: 'Create', result: 'Equal', create_revision: revision };
}

export function modRevisionIs(key: Buffer, revision: number): ICompare {
  return { key, target: 'Mod', result: 'Equal', mod_revision: revision };
}

export function putOp(key: Buffer, value: string, lease?: string): IRequestOp {
  return { request_put: { key, value: Buffer.from(value, 'utf8'), ...(lease ? { lease } : {}) } };
}

export function getOp(key: Buffer): IRequestOp {
  return { request_range: { key } };
}

export function deleteOp(key: Buffer): IRequestOp {
  return { request_delete_range: { key } };
}

/** One compare-and-act, with a deadline: `succeeded` and the responses of the branch taken. */
export async function txn(client: Etcd3, compare: ICompare[], success: IRequestOp[], failure: IRequestOp[] = [], ms?: number) {
  const res = await client.kv.txn({ compare, success, failure }, deadline(ms));
  return { succeeded: res.succeeded, revision: Number(res.header.revision), responses: res.responses };
}

/** Every key-value under `prefix` at one revision, in pages, each with a deadline (retried once). */
export async function rangePrefix(client: Etcd3, prefix: Buffer, ms?: number): Promise<{ kvs: IKeyValue[]; revision: number }> {
  return rangePaged((request) => retryOnce(() => client.kv.range(request, deadline(ms))), prefix);
}

export async function getKey(client: Etcd3, key: Buffer, ms?: number): Promise<{ kv: IKeyValue | undefined; revision: number }> {
  const res = await retryOnce(() => client.kv.range({ key }, deadline(ms)));
  return { kv: res.kvs[0], revision: Number(res.header.revision) };
}

/**
 * Runs an idempotent call, and once more with a fresh deadline if it failed for want of an answer
 * (deadline, unavailable). etcd3 sends a call to one member and retries failures on others with
 * the SAME deadline; when the first member is a dead one the first try can use up all of it, and
 * the retries then fail "after 0.000s" although two healthy members were there all along.
 */
export async function retryOnce<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!/DEADLINE_EXCEEDED|UNAVAILABLE|deadline exceeded/i.test(errorMessage(err))) throw err;
    return call();
  }
}

/** Rejects with `what` timed out after `ms` (the promise itself is left to settle unobserved). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from etcd within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Opens a watch on `key` (a prefix when `prefix` is set) from `fromRevision`, or fails within `ms`:
 * etcd3's create() waits for the server's "created", which never comes without quorum. A watcher
 * that did not open in time is cancelled, so it does not open later behind our back.
 */
export async function openWatch(client: Etcd3, key: Buffer, fromRevision: number, opts: { prefix?: boolean; ms?: number } = {}): Promise<Watcher> {
  const builder = client.watch();
  const watcher = (opts.prefix ? builder.prefix(key) : builder.key(key)).startRevision(String(fromRevision)).watcher();
  const connected = new Promise<void>((resolve, reject) => {
    watcher.once('connected', () => resolve());
    watcher.once('error', reject);
  });
  try {
    await withTimeout(connected, opts.ms ?? DEFAULT_CALL_MS, `watch on ${key.toString()}`);
  } catch (err) {
    cancelQuietly(watcher);
    throw err;
  }
  return watcher;
}

/** Cancels a watcher without waiting on etcd (cancel() sends a request that may never be answered). */
export function cancelQuietly(watcher: Watcher): void {
  watcher.removeAllListeners();
  // The watcher emits 'error' on a late server cancel; without a listener that would throw.
  watcher.on('error', () => undefined);
  watcher.cancel().catch(() => undefined);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
