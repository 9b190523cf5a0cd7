import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const READY = existsSync('/usr/bin/mosquitto_pub') && existsSync('/usr/bin/openssl');
if (!READY) console.warn('[MQTT over TLS] SKIPPED: needs mosquitto-clients and openssl');

/** Issue 4: the optional TLS listener of the edge broker, with the same device credentials and ACLs. */
describe.skipIf(!READY)('edge broker TLS listener', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let password = '';
  let cert = '';

  beforeAll(async () => {
    const dir = fleet.tempDir();
    cert = join(dir, 'cert.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-1'),
      extra: ['--mqtt-tls-port', '0', '--mqtt-tls-cert', cert, '--mqtt-tls-key', join(dir, 'key.pem')] });
    await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'm' }, spec: { protocol: 'virtual', properties: [{ name: 'level', type: 'int' }] } });
    password = (await api(cloud).call<{ credentials: { password: string } }>('POST', '/devices', { metadata: { name: 'tank' }, spec: { model: 'm', nodeName: 'edge-1', protocol: { name: 'virtual' } } })).body.credentials.password;
    await waitFor('device on the edge', async () => JSON.stringify(await fleet.edgeStatus(edge)).includes('"tank"'));
  });
  afterAll(() => fleet.cleanup());

  it('a device reports over TLS (certificate verified) and reaches the cloud twin', async () => {
    const tlsUrl = String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttTlsUrl);
    expect(tlsUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', new URL(tlsUrl).port, '--cafile', cert, '-V', 'mqttv311', '-i', 'tank', '-u', 'tank', '-P', password, '-q', '1',
      '-t', 'ef/devices/tank/twin/reported', '-m', JSON.stringify({ properties: { level: 42 } })]);
    await waitFor('cloud twin', async () => (await api(cloud).call<{ reported: { level?: number } }>('GET', '/devices/tank/twin')).body.reported.level === 42);
  });

  it('a bad setting combination is refused naming the missing setting', async () => {
    const { runBin } = await import('../helpers/fleet.js');
    const proc = runBin('edgecore', ['--node', 'x', '--cloud-url', cloud.url, '--data-dir', fleet.tempDir(), '--mqtt-tls-port', '8883']);
    expect(await proc.exited).not.toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(proc.stderr.join('\n')).toContain('mqttTlsCert');
  });
});
