import type { SecretSealer } from '../secretSealing.js';
import { SEALED_KINDS } from '../secretSealing.js';
import { rangePrefix, type EtcdContext } from './etcdContext.js';

/**
 * Seals again, under the sealer's first key, every sealed-kind body stored plain or under an older
 * key (a key rotation). Unlike SQLite's reseal at open, this is a method for ONE replica (the
 * leader) to call: several replicas opening at once would race to rewrite the same keys. Each
 * rewrite is a txn on the key's mod_revision (a concurrent write wins; the next run catches up),
 * and, etcd keeping one history, it is a new revision: watchers see a MODIFIED with the same
 * content. The old bytes stay in etcd's history until compaction (and its free pages until a
 * defrag). Bodies that do not open are left for the unreadable-object machinery.
 */
export async function resealEtcdStore(ctx: EtcdContext, sealer: SecretSealer): Promise<{ objects: number }> {
  let objects = 0;
  for (const kind of SEALED_KINDS) {
    for (const kv of (await rangePrefix(ctx, ctx.keys.objects(kind))).kvs) {
      const key = kv.key.toString('utf8');
      const id = ctx.keys.parse(key);
      const stored = kv.value.toString('utf8');
      if (!id || !sealer.needsReseal(kind, stored)) continue;
      const opened = sealer.open(kind, id.name, stored);
      if (!('body' in opened)) continue;
      const res = await ctx.calls.run((options) => ctx.kv.txn({
        compare: [{ key: kv.key, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision }],
        success: [{ request_put: { key: kv.key, value: Buffer.from(sealer.seal(kind, id.name, opened.body)) } }],
        failure: [],
      }, options));
      if (res.succeeded) objects++;
    }
  }
  return { objects };
}
