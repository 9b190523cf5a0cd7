import { describe, expect, it } from 'vitest';
import { WorkloadTemplateSchema, type WorkloadStatus } from '../../protocol/index.js';
import { RuntimeDouble, SimFailures } from './simRuntime.js';

const template = WorkloadTemplateSchema.parse({ runtime: 'process', command: '/bin/true' });
const settle = () => new Promise((r) => setTimeout(r, 5));

describe('SimFailures', () => {
  it('matches a revision per app or for every app, on chosen nodes or all', () => {
    const f = new SimFailures();
    f.fail(2, ['a']);
    f.fail(3, 'all', { app: 'web', mode: 'Failed' });
    expect(f.verdict('a', 'web', 2)).toBe('CrashLoop');
    expect(f.verdict('b', 'web', 2)).toBeUndefined();
    expect(f.verdict('b', 'web', 3)).toBe('Failed');
    expect(f.verdict('b', 'db', 3)).toBeUndefined();
    f.clear();
    expect(f.verdict('a', 'web', 2)).toBeUndefined();
  });
});

describe('RuntimeDouble', () => {
  it('reports Running for a good revision, CrashLoop for a failing one, once per start', async () => {
    const f = new SimFailures();
    const rt = new RuntimeDouble('a', f);
    const seen: [string, WorkloadStatus][] = [];
    rt.onStatus((name, s) => seen.push([name, s]));
    await rt.ensure({ name: 'web', generation: 1, template });
    await rt.ensure({ name: 'web', generation: 1, template }); // idempotent
    await settle();
    expect(seen.map(([, s]) => [s.state, s.generation])).toEqual([['Running', 1]]);
    f.fail(2, ['a']);
    await rt.ensure({ name: 'web', generation: 2, template });
    await settle();
    expect(seen.map(([, s]) => [s.state, s.generation])).toEqual([['Running', 1], ['CrashLoop', 2]]);
    expect(rt.started.get('web')).toEqual([1, 2]);
    await rt.shutdown();
  });

  it('a rule added later makes a node already running that revision crash; a start delay holds it Pending', async () => {
    const f = new SimFailures();
    const rt = new RuntimeDouble('a', f);
    const seen: string[] = [];
    rt.onStatus((_n, s) => seen.push(`${s.state}@${s.generation}`));
    await rt.ensure({ name: 'web', generation: 1, template });
    await settle();
    f.fail(1, ['a']);
    expect(seen).toEqual(['Running@1', 'CrashLoop@1']);
    f.startDelayMs = () => 30;
    await rt.ensure({ name: 'web', generation: 2, template });
    expect(rt.statuses().get('web')?.state).toBe('Pending');
    await new Promise((r) => setTimeout(r, 60));
    expect(seen).toEqual(['Running@1', 'CrashLoop@1', 'Running@2']);
    await rt.shutdown();
  });
});
