import { describe, expect, it } from 'vitest';
import type { App, AppRevision, Rollout, Workload } from '../../protocol/index.js';
import { rollbackToSync, revisionsToPrune, revisionToCreate } from './appRevisions.js';
import { processTemplate } from '../../test/helpers/cloudcore/rolloutFixtures.js';

const app = (generation: number, version: string, extra: Partial<App['spec']> = {}): App =>
  ({ kind: 'App', metadata: { name: 'web', generation }, spec: { selector: {}, template: processTemplate(version), ...extra } });

describe('revisionToCreate', () => {
  it('makes a revision numbered by the generation when template or variants changed', () => {
    const r1 = revisionToCreate(app(1, 'v1'), [])!;
    expect(r1.metadata.name).toBe('web.r1');
    expect(r1.spec).toMatchObject({ app: 'web', revision: 1, variants: [] });
    // Selector and strategy edits make no revision.
    expect(revisionToCreate(app(2, 'v1', { selector: { matchLabels: { a: 'b' } }, strategy: { maxUnavailable: 1 } }), [r1])).toBeUndefined();
    expect(revisionToCreate(app(3, 'v2'), [r1])!.spec.revision).toBe(3);
    expect(revisionToCreate(app(4, 'v1', { variants: [{ name: 'x', selector: {}, overrides: { env: { A: '1' } } }] }), [r1])!.spec.revision).toBe(4);
  });
});

describe('after a rollback', () => {
  const rolledBack = (revision: number, observedRevision: number) => ({ status: { phase: 'RolledBack', revision, observedRevision } }) as unknown as Rollout;
  const r1 = revisionToCreate(app(1, 'v1'), [])!;
  const r2 = revisionToCreate(app(2, 'v2'), [r1])!;

  it('gives the App the rolled-back-to revision, and makes no revision of the old content meanwhile', () => {
    expect(rollbackToSync(app(2, 'v2'), [r1, r2], rolledBack(1, 2))).toBe(r1);
    expect(revisionToCreate(app(2, 'v2'), [r1, r2], rolledBack(1, 2))).toBeUndefined();
    // Synced (a new generation, revision 1's content): nothing more to do, no revision 3.
    expect(rollbackToSync(app(3, 'v1'), [r1, r2], rolledBack(1, 2))).toBeUndefined();
    expect(revisionToCreate(app(3, 'v1'), [r1, r2], rolledBack(1, 2))).toBeUndefined();
    expect(revisionToCreate(app(4, 'v1', { selector: { matchLabels: { a: 'b' } } }), [r1, r2], rolledBack(1, 2))).toBeUndefined();
  });

  it('lets a later edit win, even back to the bad content', () => {
    expect(rollbackToSync(app(4, 'v2'), [r1, r2], rolledBack(1, 2))).toBeUndefined();
    expect(revisionToCreate(app(4, 'v2'), [r1, r2], rolledBack(1, 2))!.spec.revision).toBe(4);
    // A revision not yet taken up by the rollout is what the App should hold: no sync back.
    const r3 = revisionToCreate(app(3, 'v3'), [r1, r2])!;
    expect(rollbackToSync(app(3, 'v3'), [r1, r2, r3], rolledBack(1, 2))).toBeUndefined();
  });
});


describe('revisionsToPrune', () => {
  it('keeps the newest ones and every revision in use', () => {
    const revs: AppRevision[] = Array.from({ length: 14 }, (_, i) => revisionToCreate(app(i + 1, `v${i + 1}`), [])!);
    const inUse = { spec: { generation: 2 } } as Workload;
    expect(revisionsToPrune(revs, undefined, [inUse], 10).map((r) => r.spec.revision).sort((a, b) => a - b)).toEqual([1, 3, 4]);
  });
});
