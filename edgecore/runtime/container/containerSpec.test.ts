import { describe, expect, it } from 'vitest';
import { ContainerTemplateSchema, type ContainerTemplate } from '../../../protocol/index.js';
import {
  buildCreatePlan, chooseAdoptions, containerLabels, containerName, dataVolumePath, describeContainerExit, engineTimeMs, IMAGE_NEVER_PULL_ERROR,
  imageAction, LABELS, ownedFilters, readOwnedLabels, templateHash,
} from './containerSpec.js';

const tpl = (fields: Record<string, unknown> = {}): ContainerTemplate =>
  ContainerTemplateSchema.parse({ runtime: 'container', image: 'registry.local:5000/team/app:1.2', ...fields });

describe('names, labels and hashes', () => {
  it('hashes equal templates equally whatever their key order, and different ones differently', () => {
    const a = tpl({ env: { A: '1', B: '2' } });
    const b = tpl({ env: { B: '2', A: '1' } });
    expect(templateHash(a)).toBe(templateHash(b));
    expect(templateHash(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(templateHash(tpl({ env: { A: '1', B: '3' } }))).not.toBe(templateHash(a));
  });

  it('names containers after node, workload and generation', () => {
    expect(containerName('edge-1', 'web', 3)).toBe('ef-edge-1-web-g3');
  });

  it('labels round-trip through readOwnedLabels, template included but never env values', () => {
    const template = tpl({ command: ['/bin/sh'], ports: [{ containerPort: 80, hostPort: 8080 }], env: { PASSWORD: 'from-a-secret' } });
    const labels = containerLabels('edge-1', 'web', 3, template);
    expect(labels).toMatchObject({ [LABELS.owned]: 'true', [LABELS.node]: 'edge-1', [LABELS.workload]: 'web', [LABELS.generation]: '3' });
    expect(JSON.stringify(labels)).not.toContain('from-a-secret');
    expect(readOwnedLabels(labels)).toEqual({ workload: 'web', generation: 3, templateHash: templateHash(template), template: { ...template, env: {} } });
  });

  it('refuses labels that are not ours and drops a template label that does not parse', () => {
    const labels = containerLabels('edge-1', 'web', 3, tpl());
    expect(readOwnedLabels({})).toBeNull();
    expect(readOwnedLabels({ ...labels, [LABELS.owned]: 'false' })).toBeNull();
    expect(readOwnedLabels({ ...labels, [LABELS.generation]: 'x' })).toBeNull();
    expect(readOwnedLabels({ ...labels, [LABELS.template]: 'not json' })?.template).toBeNull();
  });

  it('filters by owner and node, and by workload when asked', () => {
    expect(ownedFilters('n1')).toEqual(['io.edgefleet.owned=true', 'io.edgefleet.node=n1']);
    expect(ownedFilters('n1', 'web')).toEqual(['io.edgefleet.owned=true', 'io.edgefleet.node=n1', 'io.edgefleet.workload=web']);
  });
});

describe('buildCreatePlan', () => {
  it('maps a full template onto the create body', () => {
    const { body, directories } = buildCreatePlan({
      template: tpl({
        command: ['/bin/server'], args: ['--port', '80'], env: { MODE: 'edge' }, workingDir: '/srv',
        ports: [{ containerPort: 80, hostPort: 8080, hostIP: '127.0.0.1' }, { containerPort: 53, protocol: 'udp' }],
        volumes: [{ mountPath: '/cfg', hostPath: '/etc/app', readOnly: true }, { mountPath: '/var/lib/app', dataVolume: 'state' }],
        resources: { memoryBytes: 128 * 1024 * 1024, cpus: 1.5 },
      }),
      labels: { a: 'b' }, app: 'web', dataVolumeDir: '/data/volumes',
    });
    expect(body).toEqual({
      Image: 'registry.local:5000/team/app:1.2',
      Entrypoint: ['/bin/server'],
      Cmd: ['--port', '80'],
      Env: ['MODE=edge'],
      WorkingDir: '/srv',
      Labels: { a: 'b' },
      ExposedPorts: { '80/tcp': {}, '53/udp': {} },
      HostConfig: {
        RestartPolicy: { Name: 'no' },
        Binds: ['/etc/app:/cfg:ro', '/data/volumes/web/state:/var/lib/app'],
        PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] },
        Memory: 128 * 1024 * 1024,
        NanoCpus: 1_500_000_000,
      },
    });
    expect(directories).toEqual([dataVolumePath('/data/volumes', 'web', 'state')]);
  });

  it('leaves the image defaults alone when the template says nothing', () => {
    const { body, directories } = buildCreatePlan({ template: tpl(), labels: {}, app: 'web', dataVolumeDir: '/d' });
    expect(body).toEqual({ Image: 'registry.local:5000/team/app:1.2', Env: [], Labels: {}, HostConfig: { RestartPolicy: { Name: 'no' } } });
    expect(directories).toEqual([]);
  });

  it('puts a hostNetwork container on the node\'s network', () => {
    const { body } = buildCreatePlan({ template: tpl({ hostNetwork: true }), labels: {}, app: 'mapper', dataVolumeDir: '/d' });
    expect(body.HostConfig).toEqual({ RestartPolicy: { Name: 'no' }, NetworkMode: 'host' });
  });
});

describe('imageAction', () => {
  it.each([
    ['Never', true, false, 'use'], ['Never', false, true, 'load'], ['Never', false, false, 'fail'],
    ['IfNotPresent', true, true, 'use'], ['IfNotPresent', false, true, 'load'], ['IfNotPresent', false, false, 'pull'],
    ['Always', true, true, 'pull'], ['Always', false, false, 'pull'],
  ] as const)('%s, present=%s, archive=%s → %s', (policy, present, archive, action) => {
    expect(imageAction(policy, present, archive)).toBe(action);
  });

  it('names the Never case the way operators will search for it', () => {
    expect(IMAGE_NEVER_PULL_ERROR).toBe('image not present and imagePullPolicy is Never');
  });
});

describe('exit descriptions and engine times', () => {
  it('describes exits', () => {
    expect(describeContainerExit(3, false, '')).toBe('exited with code 3');
    expect(describeContainerExit(137, true, '')).toBe('exited with code 137 (killed: out of memory)');
    expect(describeContainerExit(127, false, 'executable not found')).toBe('exited with code 127 (executable not found)');
    expect(describeContainerExit(null, false, '')).toBe('container ended');
  });

  it('reads RFC 3339 times with nanoseconds and treats the zero time as never', () => {
    expect(engineTimeMs('2026-11-22T05:00:24.928138443Z')).toBe(Date.parse('2026-11-22T05:00:24.928Z'));
    expect(engineTimeMs('0001-01-01T00:00:00Z')).toBeNull();
    expect(engineTimeMs('')).toBeNull();
    expect(engineTimeMs('garbage')).toBeNull();
  });
});

describe('chooseAdoptions', () => {
  it('keeps the newest generation per workload and lists the other running ones as duplicates', () => {
    const labels = (workload: string, generation: number) => containerLabels('n1', workload, generation, tpl());
    const { keep, duplicates } = chooseAdoptions([
      { Id: 'web-1', Labels: labels('web', 1) },
      { Id: 'web-2', Labels: labels('web', 2) },
      { Id: 'db-5', Labels: labels('db', 5) },
      { Id: 'stranger', Labels: { app: 'x' } },
      { Id: 'no-template', Labels: { ...labels('cache', 1), [LABELS.template]: '{}' } },
    ]);
    expect(Object.fromEntries(keep)).toEqual({ web: 'web-2', db: 'db-5' });
    expect(duplicates).toEqual(['web-1']);
  });
});
