import type { IKeyValue, KVClient } from 'etcd3';
import type { EtcdCalls } from './etcdErrors.js';
import type { EtcdKeys } from './keys.js';
import { rangePaged } from './pagedRange.js';
import type { ObjectCodec } from './objectCodec.js';

/** What the store's parts share: the raw KV client, the key layout, deadlines and error mapping, the body codec. */
export interface EtcdContext {
  readonly kv: KVClient;
  readonly keys: EtcdKeys;
  readonly calls: EtcdCalls;
  readonly codec: ObjectCodec;
}

export async function rangeOne(ctx: EtcdContext, key: string): Promise<{ kv: IKeyValue | undefined; revision: number }> {
  const res = await ctx.calls.run((options) => ctx.kv.range({ key: Buffer.from(key) }, options));
  return { kv: res.kvs[0], revision: Number(res.header.revision) };
}

/** Every key under `prefix` at one revision (in pages: pagedRange.ts), each page with the store's deadlines. */
export async function rangePrefix(ctx: EtcdContext, prefix: string, opts: { keysOnly?: boolean } = {}): Promise<{ kvs: IKeyValue[]; revision: number }> {
  return rangePaged((request) => ctx.calls.run((options) => ctx.kv.range(request, options)), prefix, opts);
}
