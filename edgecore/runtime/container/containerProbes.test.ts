import { describe, expect, it } from 'vitest';
import { ContainerTemplateSchema, type ContainerTemplate } from '../../../protocol/index.js';
import { containerAddress, resolveProbeEndpoint } from './containerProbes.js';
import { ContainerInspectSchema, type ContainerInspect } from './engineClient.js';

const ports = (list: unknown[]): ContainerTemplate['ports'] =>
  ContainerTemplateSchema.parse({ runtime: 'container', image: 'app:1', ports: list }).ports;

/** An inspect answer as the engine sends it, through the client's schema. */
const inspect = (networkSettings: unknown): ContainerInspect => ContainerInspectSchema.parse({
  Id: 'c1', Name: '/c1',
  State: { Status: 'running', Running: true, Pid: 42, ExitCode: 0 },
  Config: { Image: 'app:1', Labels: null },
  HostConfig: {},
  NetworkSettings: networkSettings,
});

describe('containerAddress', () => {
  it('takes the top-level IPAddress of the default network', () => {
    expect(containerAddress(inspect({ IPAddress: '10.89.1.2', Networks: { efnet1: { IPAddress: '10.89.1.2' } } }))).toBe('10.89.1.2');
  });

  it('falls back to the first named network with an address', () => {
    expect(containerAddress(inspect({ IPAddress: '', Networks: { zeta: { IPAddress: '10.2.0.5' }, alpha: { IPAddress: '' }, beta: { IPAddress: '10.1.0.7' } } })))
      .toBe('10.1.0.7');
  });

  it('is null without a network (network "none"), or without network settings at all', () => {
    expect(containerAddress(inspect({ IPAddress: '', Networks: {} }))).toBeNull();
    expect(containerAddress(inspect({ IPAddress: null, Networks: null }))).toBeNull();
    expect(containerAddress(inspect(undefined))).toBeNull();
  });
});

describe('resolveProbeEndpoint', () => {
  const published = ports([{ containerPort: 8080, hostPort: 18080 }, { containerPort: 9000 }, { containerPort: 53, hostPort: 5353, protocol: 'udp' }]);

  it('sends the default host (the workload itself) to the container address', () => {
    expect(resolveProbeEndpoint({ host: '127.0.0.1', port: 8080 }, '10.89.1.2', { ports: published })).toEqual({ host: '10.89.1.2', port: 8080 });
    expect(resolveProbeEndpoint({ host: '127.0.0.1', port: 9000 }, '10.89.1.2', { ports: [] })).toEqual({ host: '10.89.1.2', port: 9000 });
  });

  it('without an address, uses the tcp port published on the host', () => {
    expect(resolveProbeEndpoint({ host: '127.0.0.1', port: 8080 }, null, { ports: published })).toEqual({ host: '127.0.0.1', port: 18080 });
    const onAddress = ports([{ containerPort: 8080, hostPort: 18080, hostIP: '192.168.7.3' }]);
    expect(resolveProbeEndpoint({ host: '127.0.0.1', port: 8080 }, null, { ports: onAddress })).toEqual({ host: '192.168.7.3', port: 18080 });
    const everywhere = ports([{ containerPort: 8080, hostPort: 18080, hostIP: '0.0.0.0' }]);
    expect(resolveProbeEndpoint({ host: '127.0.0.1', port: 8080 }, null, { ports: everywhere })).toEqual({ host: '127.0.0.1', port: 18080 });
  });

  it('refuses, naming why, when the port can be reached neither way', () => {
    expect(() => resolveProbeEndpoint({ host: '127.0.0.1', port: 9000 }, null, { ports: published })).toThrow(/no network address and port 9000 is not published/);
    // A udp publication is no way in for HTTP or TCP.
    expect(() => resolveProbeEndpoint({ host: '127.0.0.1', port: 53 }, null, { ports: published })).toThrow(/port 53/);
  });

  it('keeps loopback for a host-network container: it shares the node\'s loopback', () => {
    expect(resolveProbeEndpoint({ host: '127.0.0.1', port: 10350 }, null, { ports: [], hostNetwork: true })).toEqual({ host: '127.0.0.1', port: 10350 });
  });

  it('uses any other explicit host as is', () => {
    expect(resolveProbeEndpoint({ host: '10.0.0.9', port: 80 }, '10.89.1.2', { ports: published })).toEqual({ host: '10.0.0.9', port: 80 });
    expect(resolveProbeEndpoint({ host: 'sensor.local', port: 80 }, null, { ports: [] })).toEqual({ host: 'sensor.local', port: 80 });
  });
});
