import type { IKeyValue, IRangeRequest, IRangeResponse } from 'etcd3';
import { prefixEnd } from './keys.js';

/**
 * Keys per page of a prefix read. Every Node or Workload of a 30,000-node fleet in one answer is
 * tens of MiB that etcd builds, sends and we hold twice at once; pages keep each answer small,
 * and every page is read at the first page's revision, so the whole is one consistent snapshot.
 */
export const RANGE_PAGE = 2_000;

/** Every key-value under `prefix` at one revision, read in pages through `range` (the caller's deadlines and retries). */
export async function rangePaged(
  range: (request: IRangeRequest) => Promise<IRangeResponse>, prefix: string | Buffer, opts: { keysOnly?: boolean; pageSize?: number } = {},
): Promise<{ kvs: IKeyValue[]; revision: number }> {
  const end = prefixEnd(prefix);
  const kvs: IKeyValue[] = [];
  let from = Buffer.from(prefix);
  let revision = 0;
  for (;;) {
    const res = await range({
      key: from, range_end: end, limit: opts.pageSize ?? RANGE_PAGE, keys_only: opts.keysOnly, ...(revision ? { revision } : {}),
    });
    if (!revision) revision = Number(res.header.revision);
    kvs.push(...res.kvs);
    if (!res.more || res.kvs.length === 0) return { kvs, revision };
    // The next page starts just after the last key read.
    from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
  }
}
