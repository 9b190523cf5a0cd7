import { describe, expect, it } from 'vitest';
import { WorkloadTemplateSchema } from './templates.js';

const issues = (input: unknown) => {
  const r = WorkloadTemplateSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('workload templates: device mappers and host networking', () => {
  it('takes a process mapper and a host-network container mapper', () => {
    expect(issues({ runtime: 'process', command: 'mapper', args: ['modbus'], deviceMapper: { protocol: 'modbus' } })).toEqual([]);
    expect(issues({ runtime: 'container', image: 'mappers/opcua:1', hostNetwork: true, deviceMapper: { protocol: 'opcua' } })).toEqual([]);
    // Optional, not defaulted: templates stored before these fields parse to what they were, so nothing restarts on upgrade.
    const parsed = WorkloadTemplateSchema.parse({ runtime: 'container', image: 'app:1' });
    expect('hostNetwork' in parsed || 'deviceMapper' in parsed).toBe(false);
  });

  it('refuses a mapper container off the node network, ports with hostNetwork, and a bad protocol', () => {
    expect(issues({ runtime: 'container', image: 'mappers/modbus:1', deviceMapper: { protocol: 'modbus' } }))
      .toEqual(['hostNetwork: must be true for a deviceMapper container: it reaches the edge broker and device list on the node\'s loopback']);
    expect(issues({ runtime: 'container', image: 'web:1', hostNetwork: true, ports: [{ containerPort: 80, hostPort: 8080 }] }))
      .toEqual(['ports: do not apply with hostNetwork: the container listens on the node\'s ports directly']);
    expect(issues({ runtime: 'process', command: 'mapper', deviceMapper: { protocol: '' } })).toEqual(['deviceMapper.protocol: Too small: expected string to have >=1 characters']);
    expect(issues({ runtime: 'process', command: 'mapper', deviceMapper: { protocol: 'modbus', port: 1 } })).toHaveLength(1);
  });
});
