import { describe, expect, it } from 'vitest';
import { createDriver } from './drivers.js';
import { loadMapperSettings } from './settings.js';

const files: Record<string, string> = { '/etc/ef/mapper.pw': 's3cret\n', '/etc/ef/empty': '\n', '/etc/ef/m.yaml': 'node: edge-7\nedgeUrl: http://127.0.0.1:10350\nrefreshSeconds: 5\n' };
const readFile = (path: string): string => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
  return text;
};
const base = { protocol: 'modbus', node: 'edge-1', edgeUrl: 'http://127.0.0.1:10350' };

describe('mapper settings', () => {
  it('takes flags, defaults, and the password from the credential file', () => {
    expect(loadMapperSettings({ ...base, credentialFile: '/etc/ef/mapper.pw' }, {}, readFile)).toEqual({
      protocol: 'modbus', node: 'edge-1', edgeUrl: 'http://127.0.0.1:10350', mqtt: 'mqtt://127.0.0.1:1883',
      refreshSeconds: 30, logLevel: 'info', telemetry: false, password: 's3cret',
    });
  });

  it('takes env EF_MAPPER_* and YAML, flags winning', () => {
    const s = loadMapperSettings({ protocol: 'virtual', config: '/etc/ef/m.yaml', refreshSeconds: '2' }, { EF_MAPPER_PASSWORD: 'pw', EF_MAPPER_MQTT: 'mqtt://10.0.0.1:1884' }, readFile);
    expect(s).toMatchObject({ node: 'edge-7', refreshSeconds: 2, mqtt: 'mqtt://10.0.0.1:1884', password: 'pw' });
  });

  it('names the bad setting and where it came from', () => {
    expect(() => loadMapperSettings({ ...base, protocol: 'bacnet' }, { EF_MAPPER_PASSWORD: 'x' }, readFile)).toThrow('unknown protocol "bacnet" (argument <protocol>): must be one of: virtual, modbus, opcua');
    expect(() => loadMapperSettings({ ...base, edgeUrl: undefined }, { EF_MAPPER_PASSWORD: 'x', EF_MAPPER_EDGE_URL: 'ftp://x' }, readFile)).toThrow(/"edgeUrl" \(from env EF_MAPPER_EDGE_URL\): must be an http\(s\) URL/);
    expect(() => loadMapperSettings({ ...base, refreshSeconds: '0' }, { EF_MAPPER_PASSWORD: 'x' }, readFile)).toThrow(/"refreshSeconds"/);
    expect(() => loadMapperSettings({ ...base, mqtt: 'http://x' }, { EF_MAPPER_PASSWORD: 'x' }, readFile)).toThrow(/"mqtt".*mqtt:\/\//);
  });

  it('takes what edgecore gives a mapper workload: protocol, node, URLs and credential file, all from env', () => {
    const env = { EF_MAPPER_PROTOCOL: 'modbus', EF_MAPPER_NODE: 'edge-3', EF_MAPPER_EDGE_URL: 'http://127.0.0.1:10350', EF_MAPPER_MQTT: 'mqtt://127.0.0.1:1883', EF_MAPPER_CREDENTIAL_FILE: '/etc/ef/mapper.pw' };
    expect(loadMapperSettings({}, env, readFile)).toMatchObject({ protocol: 'modbus', node: 'edge-3', mqtt: 'mqtt://127.0.0.1:1883', password: 's3cret' });
    // The argument still wins over the env, as every flag does.
    expect(loadMapperSettings({ protocol: 'virtual' }, env, readFile).protocol).toBe('virtual');
    expect(() => loadMapperSettings({ node: 'edge-1', edgeUrl: 'http://127.0.0.1:1' }, { EF_MAPPER_PASSWORD: 'x' }, readFile))
      .toThrow('no protocol: name it as the argument (e.g. `mapper modbus`) or set EF_MAPPER_PROTOCOL');
  });

  it('requires a password, and a readable, non-empty credential file', () => {
    expect(() => loadMapperSettings(base, {}, readFile)).toThrow('no mapper password: pass --credential-file <file> or set EF_MAPPER_PASSWORD');
    expect(() => loadMapperSettings({ ...base, credentialFile: '/nope' }, {}, readFile)).toThrow(/cannot read credential file \/nope: ENOENT/);
    expect(() => loadMapperSettings({ ...base, credentialFile: '/etc/ef/empty' }, {}, readFile)).toThrow(/is empty/);
  });

  it('loads the driver of the chosen protocol', async () => {
    expect((await createDriver({ protocol: 'virtual' })).constructor.name).toBe('VirtualDriver');
    expect((await createDriver({ protocol: 'modbus' })).constructor.name).toBe('ModbusDriver');
  });
});
