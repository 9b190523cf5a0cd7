import { describe, expect, it } from 'vitest';
import { AppSpecSchema, type ContainerTemplate, type Variant } from '../../protocol/index.js';
import { appGroups, effectiveSpec, replicaTemplates, withImageTag } from './variants.js';

const container: ContainerTemplate = {
  runtime: 'container', image: 'registry.local:5000/team/web:1.0', imagePullPolicy: 'IfNotPresent', env: { LEVEL: 'info', REGION: 'none' },
  ports: [], volumes: [], resources: { memoryBytes: 1000 }, restartPolicy: 'Always', probes: {}, configs: [], secrets: [],
};
const variants: Variant[] = [
  { name: 'eu', priority: 10, selector: { matchLabels: { region: 'eu' } }, overrides: { imageTag: '1.1-eu', env: { REGION: 'eu' } } },
  { name: 'big', priority: 20, selector: { matchExpressions: [{ key: 'size', operator: 'In', values: ['l', 'xl'] }] }, overrides: { replicas: 3, resources: { cpus: 2 }, env: { REGION: 'big' } } },
  { name: 'debug', selector: { matchExpressions: [{ key: 'debug', operator: 'Exists' }] }, overrides: { env: { LEVEL: 'debug' } } },
];

describe('effectiveSpec', () => {
  it('applies matching variants lowest priority first, so the highest priority wins', () => {
    const spec = effectiveSpec(container, variants, { region: 'eu', size: 'xl', debug: '1' });
    expect(spec.variants).toEqual(['debug', 'eu', 'big']);
    expect(spec.replicas).toBe(3);
    const t = spec.template as ContainerTemplate;
    expect(t.env).toEqual({ LEVEL: 'debug', REGION: 'big' });
    expect(t.image).toBe('registry.local:5000/team/web:1.1-eu');
    expect(t.resources).toEqual({ memoryBytes: 1000, cpus: 2 });
  });
  it('leaves the template alone when no variant matches', () => {
    const spec = effectiveSpec(container, variants, { region: 'us' });
    expect(spec).toEqual({ template: container, replicas: 1, variants: [] });
  });
  it('gives each replica its index when there are several', () => {
    const templates = replicaTemplates(effectiveSpec(container, variants, { size: 'l' }));
    expect(templates.map((t) => t.env['EF_REPLICA'])).toEqual(['0', '1', '2']);
    expect(replicaTemplates(effectiveSpec(container, [], {}))[0]!.env['EF_REPLICA']).toBeUndefined();
  });
});

describe('withImageTag', () => {
  it('replaces the tag and keeps registry port and path', () => {
    expect(withImageTag('registry.local:5000/team/web:1.0', '2')).toBe('registry.local:5000/team/web:2');
    expect(withImageTag('registry.local:5000/team/web', '2')).toBe('registry.local:5000/team/web:2');
    expect(withImageTag(`web:1@sha256:${'a'.repeat(64)}`, '2')).toBe('web:2');
  });
});

describe('appGroups', () => {
  it('groups nodes by the variants that match them, base group always listed', () => {
    const groups = appGroups(container, variants, [
      { name: 'a', labels: { region: 'eu' } }, { name: 'b', labels: { region: 'eu' } }, { name: 'c', labels: { size: 'l', region: 'eu' } },
    ]);
    expect(groups.map((g) => [g.variants, g.nodes, g.replicas])).toEqual([[[], [], 1], [['eu'], ['a', 'b'], 1], [['eu', 'big'], ['c'], 3]]);
  });
});

describe('AppSpecSchema variants', () => {
  const process = { runtime: 'process', command: 'sleep' };
  it('refuses container-only overrides on a process template, naming the field', () => {
    const r = AppSpecSchema.safeParse({ template: process, variants: [{ name: 'x', selector: {}, overrides: { imageTag: '2' } }] });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['variants', 0, 'overrides', 'imageTag']);
  });
  it('refuses duplicate variant names and bad images', () => {
    expect(AppSpecSchema.safeParse({ template: process, variants: [{ name: 'x', selector: {}, overrides: {} }, { name: 'x', selector: {}, overrides: {} }] }).success).toBe(false);
    expect(AppSpecSchema.safeParse({ template: { runtime: 'container', image: 'web:1' }, variants: [{ name: 'x', selector: {}, overrides: { image: 'Bad Image' } }] }).success).toBe(false);
  });
  it('checks the strategy: waves need type waves and end at 100%', () => {
    expect(AppSpecSchema.safeParse({ template: process, strategy: { type: 'waves', waves: [{ percent: 10 }] } }).error?.issues[0]?.message).toMatch(/last wave/);
    expect(AppSpecSchema.safeParse({ template: process, strategy: { waves: [{ percent: 100 }] } }).error?.issues[0]?.message).toMatch(/only allowed when type is waves/);
    expect(AppSpecSchema.safeParse({ template: process, strategy: { type: 'waves', waves: [{ percent: 1, count: 2 }, { percent: 100 }] } }).success).toBe(false);
    expect(AppSpecSchema.safeParse({ template: process, strategy: { maxUnavailable: '0%' } }).success).toBe(false);
    expect(AppSpecSchema.safeParse({ template: process, strategy: { type: 'waves', maxUnavailable: '10%', failureThreshold: '5%', waves: [{ percent: 1 }, { count: 5, approval: true }, { percent: 100 }] } }).success).toBe(true);
  });
});
