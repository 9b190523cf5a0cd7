import { describe, expect, it } from 'vitest';
import { SecretSchema, type Secret } from '../../protocol/index.js';
import type { WatchEvent } from '../../cloudcore/store/store.js';
import type { SuiteContext } from './conformance.js';
import { waitFor } from './fixtures.js';

/**
 * Secrets through every path of the store (the Secret-kind half of the conformance suite): a
 * backend that transforms Secret bodies at rest (seals them) must hand back exactly what was
 * written, live and replayed, before and after a reopen.
 */

function makeSecret(name: string, data: Record<string, string>): Secret {
  return SecretSchema.parse({ kind: 'Secret', metadata: { name }, data });
}

export function secretConformanceTests(ctx: SuiteContext): void {
  describe('Secret values', () => {
    it('read back as written through get, list, update, a replayed and a live watch, delete and a reopen', async () => {
      const { store } = ctx;
      const start = await store.revision();
      const created = await store.create(makeSecret('db', { password: 's3cret-value', user: 'app' }));
      expect(created.data).toEqual({ password: 's3cret-value', user: 'app' });
      expect(await store.get('Secret', 'db')).toEqual(created);
      const updated = await store.update({ ...created, data: { password: 'n3w-value', user: 'app' } });
      expect((await store.list('Secret')).items).toEqual([updated]);

      const events: WatchEvent[] = [];
      const watch = await store.watch({ kind: 'Secret', fromRevision: start }, (e) => { events.push(e); });
      await waitFor(() => events.length >= 2, 'the replayed create and update');
      const deleted = await store.delete('Secret', 'db');
      await waitFor(() => events.length >= 3, 'the live delete');
      watch.close();
      expect(events.map((e) => [e.type, e.object])).toEqual([['ADDED', created], ['MODIFIED', updated], ['DELETED', deleted]]);
      expect(deleted.data).toEqual({ password: 'n3w-value', user: 'app' });

      const kept = await store.create(makeSecret('kept', { token: 'abc' }));
      const reopened = ctx.harness.reopen ? await ctx.harness.reopen() : store;
      expect(await reopened.get('Secret', 'kept')).toEqual(kept);
    });
  });
}
