import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud } from '../helpers/fleet.js';

/** Issue 3: bad workload specs are refused by the API with the field named, and nothing is stored. */
describe('workload spec validation', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  beforeAll(async () => { cloud = await fleet.startCloud(); });
  afterAll(() => fleet.cleanup());

  const container = (extra: Record<string, unknown>) => ({ metadata: { name: 'c' }, spec: { template: { runtime: 'container', image: 'busybox:1.36', ...extra } } });

  it.each([
    ['unknown runtime', { metadata: { name: 'c' }, spec: { template: { runtime: 'vm', image: 'x' } } }, 'spec.template.runtime'],
    ['bad image reference', container({ image: 'Not An Image!' }), 'spec.template.image'],
    ['negative memory limit', container({ resources: { memoryBytes: -5 } }), 'spec.template.resources.memoryBytes'],
    ['negative cpu limit', container({ resources: { cpus: -1 } }), 'spec.template.resources.cpus'],
    ['volume path escape', container({ volumes: [{ mountPath: '/data', hostPath: '/var/lib/../../etc' }] }), 'spec.template.volumes.0.hostPath'],
    ['relative mount path', container({ volumes: [{ mountPath: 'data', dataVolume: 'd' }] }), 'spec.template.volumes.0.mountPath'],
    ['port out of range', container({ ports: [{ containerPort: 70000 }] }), 'spec.template.ports.0.containerPort'],
    ['probe with two kinds', container({ probes: { liveness: { exec: { command: ['true'] }, tcpSocket: { port: 80 } } } }), 'spec.template.probes.liveness'],
    ['secret mount path escape', { metadata: { name: 'c' }, spec: { template: { runtime: 'process', command: 'x', secrets: [{ name: 's', mountPath: '/run/../etc' }] } } }, 'spec.template.secrets.0.mountPath'],
  ])('%s is refused naming the field', async (_what, body, field) => {
    const before = ((await (await fetch(`${cloud.url}/api/v1/healthz`)).json()) as { revision: number }).revision;
    const r = await api(cloud).call<{ error: string; field?: string }>('POST', '/apps', body);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.field).toBe(field);
    const after = ((await (await fetch(`${cloud.url}/api/v1/healthz`)).json()) as { revision: number }).revision;
    expect(after).toBe(before);
  });

  it('a valid container app with limits, ports, volumes and probes is accepted', async () => {
    const r = await api(cloud).call('POST', '/apps', container({
      resources: { memoryBytes: 64 * 1024 * 1024, cpus: 0.5 },
      ports: [{ containerPort: 8080, hostPort: 18080 }],
      volumes: [{ mountPath: '/data', dataVolume: 'state' }, { mountPath: '/host', hostPath: '/srv/edge', readOnly: true }],
      probes: { liveness: { httpGet: { port: 8080, path: '/healthz' } } },
    }));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  });
});
