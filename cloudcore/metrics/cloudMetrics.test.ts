import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyObject } from '../../protocol/index.js';
import { conventionProblems, Scrape } from '../../test/metrics/promText.js';
import { Hub } from '../hub/hub.js';
import { openSqliteStore, type SqliteStore } from '../store/sqliteStore.js';
import { CloudMetrics, countRolloutsByPhase } from './cloudMetrics.js';

/**
 * Rollouts are read generically (status.phase of whatever the store holds as kind Rollout), so
 * these objects carry only what the metrics read; the rollout controller's tests own the rest.
 */
const rollout = (name: string, phase: string) => ({ kind: 'Rollout', metadata: { name }, spec: { app: name }, status: { phase } }) as unknown as AnyObject;

describe('cloud metrics on a real store', () => {
  const dirs: string[] = [];
  const stores: SqliteStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const open = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-metrics-'));
    dirs.push(dir);
    const store = await openSqliteStore({ path: join(dir, 'c.db') });
    stores.push(store);
    return store;
  };

  it('rollouts by phase; a phase seen once stays reported at 0', async () => {
    const store = await open();
    expect(await countRolloutsByPhase(store)).toEqual(new Map());
    await store.create(rollout('web', 'Progressing'));
    await store.create(rollout('db', 'Progressing'));
    await store.create(rollout('ui', 'Paused'));
    expect(await countRolloutsByPhase(store)).toEqual(new Map([['Progressing', 2], ['Paused', 1]]));

    const telemetry = { unreadableSkipped: 3 };
    const metrics = new CloudMetrics({ hub: new Hub({ store, log: pino({ level: 'silent' }) }), store, telemetry }, { defaultMetrics: false });
    const first = new Scrape(await metrics.render());
    expect(conventionProblems(first, 'edgefleet_')).toEqual([]);
    expect(first.value('edgefleet_cloud_telemetry_unreadable_total')).toBe(3);
    expect(first.value('edgefleet_rollouts', { phase: 'Progressing' })).toBe(2);
    expect(first.value('edgefleet_store_revision')).toBe(await store.revision());
    await store.delete('Rollout', 'ui');
    const second = new Scrape(await metrics.render());
    expect(second.family('edgefleet_rollouts').metrics.find((m) => m.labels?.phase === 'Paused')?.value).toBe('0');
    expect(second.value('edgefleet_hub_sessions')).toBe(0);
  });

  it('a store that cannot list the kind counts nothing instead of failing the scrape', async () => {
    const store = await open();
    await store.close();
    expect(await countRolloutsByPhase(store)).toEqual(new Map());
  });
});
