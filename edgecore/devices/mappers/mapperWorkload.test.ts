import { describe, expect, it } from 'vitest';
import { WorkloadTemplateSchema } from '../../../protocol/index.js';
import { localUrl, MAPPER_CREDENTIAL_MOUNT, withMapperAccess } from './mapperWorkload.js';

const endpoints = { node: 'edge-4', edgeUrl: 'http://127.0.0.1:10350', mqttUrl: 'mqtt://127.0.0.1:1883', credentialFile: '/var/lib/edgefleet/mappers/modbus.password' };

describe('withMapperAccess', () => {
  it('tells a process mapper its protocol, node, edge API, broker and credential file', () => {
    const template = WorkloadTemplateSchema.parse({ runtime: 'process', command: 'mapper', env: { LOG: '1' }, deviceMapper: { protocol: 'modbus' } });
    expect(withMapperAccess(template, endpoints)).toEqual({ ...template, env: {
      EF_MAPPER_PROTOCOL: 'modbus', EF_MAPPER_NODE: 'edge-4', EF_MAPPER_EDGE_URL: 'http://127.0.0.1:10350', EF_MAPPER_MQTT: 'mqtt://127.0.0.1:1883',
      EF_MAPPER_CREDENTIAL_FILE: '/var/lib/edgefleet/mappers/modbus.password', LOG: '1',
    } });
  });

  it('mounts the credential file read-only into a container mapper', () => {
    const template = WorkloadTemplateSchema.parse({ runtime: 'container', image: 'mappers/modbus:1', hostNetwork: true, deviceMapper: { protocol: 'modbus' },
      volumes: [{ hostPath: '/dev/ttyUSB0', mountPath: '/dev/ttyUSB0' }] });
    const result = withMapperAccess(template, endpoints);
    if (result.runtime !== 'container') throw new Error('runtime changed');
    expect(result.env.EF_MAPPER_CREDENTIAL_FILE).toBe(MAPPER_CREDENTIAL_MOUNT);
    expect(result.volumes).toEqual([
      { hostPath: '/dev/ttyUSB0', mountPath: '/dev/ttyUSB0', readOnly: false },
      { hostPath: endpoints.credentialFile, mountPath: MAPPER_CREDENTIAL_MOUNT, readOnly: true },
    ]);
  });

  it('lets the template\'s own env win, and leaves other workloads alone', () => {
    const mapper = WorkloadTemplateSchema.parse({ runtime: 'process', command: 'mapper', env: { EF_MAPPER_MQTT: 'mqtts://127.0.0.1:8883' }, deviceMapper: { protocol: 'opcua' } });
    expect(withMapperAccess(mapper, endpoints).env.EF_MAPPER_MQTT).toBe('mqtts://127.0.0.1:8883');
    const plain = WorkloadTemplateSchema.parse({ runtime: 'process', command: 'web' });
    expect(withMapperAccess(plain, endpoints)).toBe(plain);
  });
});

describe('localUrl', () => {
  it('reaches a wildcard listener on loopback and brackets IPv6', () => {
    expect(localUrl('mqtt', '0.0.0.0', 1883)).toBe('mqtt://127.0.0.1:1883');
    expect(localUrl('http', '::', 10350)).toBe('http://[::1]:10350');
    expect(localUrl('http', '::1', 10350)).toBe('http://[::1]:10350');
    expect(localUrl('mqtt', '127.0.0.1', 1883)).toBe('mqtt://127.0.0.1:1883');
    expect(localUrl('mqtt', '10.1.2.3', 1883)).toBe('mqtt://10.1.2.3:1883');
  });
});
