import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../cloudcore/pki/certificateAuthority.js';
import { DEVICE_CERT_ORG, newKeyAndCsr, NODE_CERT_ORG } from '../../protocol/index.js';
import { Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { runCliFromConfig } from '../helpers/edgectl/runCli.js';
import { killClients, runClient } from '../helpers/devices/mosquittoClients.js';
import { issueTestCert, makeTestCa, type TestCert } from '../helpers/devices/testCertificates.js';
import { httpsCall, tlsApi } from '../helpers/tlsClient.js';
import { sleep, waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const READY = existsSync('/usr/bin/mosquitto_pub') && existsSync('/usr/bin/openssl');
if (!READY) console.warn('[device certificates] SKIPPED: needs mosquitto-clients and openssl');

/**
 * Issue 21, device identity beyond passwords, end to end: a real cloudcore on HTTPS signs device
 * CSRs (`POST /devices/{d}/certificate`, which also puts the serial on the Device's allow-list),
 * a real edgecore joined to it checks device certificates against the CA bundle of its own
 * identity, and Debian's mosquitto clients log in with `--cert/--key`. Revocation goes through
 * `DELETE /devices/{d}/certificates/{serial}`.
 */
describe.skipIf(!READY)('device client certificates on the edge broker', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let tlsPort = '';
  let serverCert = '';
  let lamp: TestCert;
  let lampSpare: TestCert;
  let fan: TestCert;
  let nodeCert: TestCert;
  let stranger: TestCert;
  let certDir = '';

  /** mosquitto_pub over TLS with a client certificate and no username, from `from` (each refusal its own address: warnings are one per address per minute). */
  const publishWith = (cert: TestCert, clientId: string, topic: string, message: string, from = '127.0.0.1') => runClient('mosquitto_pub', [
    '-h', '127.0.0.1', '-p', tlsPort, '-A', from, '--cafile', serverCert, '--cert', cert.cert, '--key', cert.key,
    '-V', 'mqttv311', '-i', clientId, '-q', '1', '-t', topic, '-m', message]).done;
  const reportedLevel = async (device: string) =>
    (await tlsApi(cloud).call<{ reported: { level?: number } }>('GET', `/devices/${device}/twin`)).body.reported.level;
  const refusals = (address: string) => edge.proc.lines.filter((l) => l.msg === 'MQTT connection refused' && l.address === address).map((l) => String(l.reason));
  /** A device certificate the way edgectl gets one: key and CSR here, signed by the cloud, serial on the Device. */
  const issue = async (device: string, file: string): Promise<TestCert> => {
    const { keyPem, csrPem } = await newKeyAndCsr(device, DEVICE_CERT_ORG);
    const answer = await tlsApi(cloud).call<{ certificate: string; serial: string }>('POST', `/devices/${device}/certificate`, { csr: csrPem });
    expect(answer.status, answer.text).toBe(201);
    const cert = { cert: join(certDir, `${file}.crt`), key: join(certDir, `${file}.key`), serial: answer.body.serial };
    writeFileSync(cert.key, keyPem, { mode: 0o600 });
    writeFileSync(cert.cert, answer.body.certificate);
    return cert;
  };

  beforeAll(async () => {
    const dir = fleet.tempDir();
    certDir = join(dir, 'certs');
    mkdirSync(certDir);
    serverCert = join(dir, 'server.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'server.key'), '-out', serverCert,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    cloud = await fleet.startCloud({ tls: true });
    const api = tlsApi(cloud);
    // No --mqtt-tls-client-ca: the broker trusts the CA bundle the node got at its join.
    edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await api.token('edge-1'),
      extra: ['--mqtt-tls-port', '0', '--mqtt-tls-cert', serverCert, '--mqtt-tls-key', join(dir, 'server.key')] });
    tlsPort = new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttTlsUrl)).port;
    await api.call('POST', '/devicemodels', { metadata: { name: 'm' }, spec: { protocol: 'virtual', properties: [{ name: 'level', type: 'int', accessMode: 'ReadWrite' }] } });
    for (const name of ['lamp-1', 'fan-1']) {
      await api.call('POST', '/devices', { metadata: { name }, spec: { model: 'm', nodeName: 'edge-1', protocol: { name: 'virtual' } } });
    }
    lamp = await issue('lamp-1', 'lamp');
    lampSpare = await issue('lamp-1', 'lamp-spare');
    fan = await issue('fan-1', 'fan');
    // Signed by the right CA, but a node's certificate named like the device.
    const ca = await CertificateAuthority.open({ dataDir: cloud.dataDir }, pino({ level: 'silent' }));
    const nodeKey = await newKeyAndCsr('lamp-1', NODE_CERT_ORG);
    const signed = await ca.signNode('lamp-1', nodeKey.csrPem, 3600);
    nodeCert = { cert: join(certDir, 'node.crt'), key: join(certDir, 'node.key'), serial: signed.serial };
    writeFileSync(nodeCert.key, nodeKey.keyPem, { mode: 0o600 });
    writeFileSync(nodeCert.cert, signed.pem);
    stranger = issueTestCert(dir, makeTestCa(dir, 'stranger-ca'), 'stranger', '/CN=lamp-1/O=edgefleet-device', lamp.serial);
    await waitFor('devices with their certificate lists on the edge', async () => {
      const status = JSON.stringify(await fleet.edgeStatus(edge));
      return status.includes('"lamp-1"') && status.includes('"fan-1"');
    });
  });
  const readCa = () => readFileSync(join(cloud.dataDir, 'pki', 'ca.crt'), 'utf8');
  afterAll(async () => {
    await killClients();
    await fleet.cleanup();
  });

  it('a device logs in with its certificate alone and reports on its own topics', async () => {
    const published = await waitFor('lamp-1 accepted by certificate', async () => {
      const r = await publishWith(lamp, 'lamp-1', 'ef/devices/lamp-1/twin/reported', JSON.stringify({ properties: { level: 7 } }));
      return r.code === 0 ? r : undefined;
    });
    expect(published.stderr).toBe('');
    await waitFor('cloud twin of lamp-1', async () => (await reportedLevel('lamp-1')) === 7);
  });

  it('it reads its own topics and not another device\'s', async () => {
    for (const device of ['lamp-1', 'fan-1']) {
      const patched = await httpsCall(`${cloud.url}/api/v1/devices/${device}/twin`, {
        method: 'PATCH', ca: readCa(), body: { level: 5 },
        headers: { authorization: `Bearer ${cloud.token}`, 'content-type': 'application/merge-patch+json' },
      });
      expect(patched.status, patched.text).toBe(200);
    }
    const subscribe = (topic: string, clientId: string) => runClient('mosquitto_sub', ['-h', '127.0.0.1', '-p', tlsPort, '--cafile', serverCert,
      '--cert', lamp.cert, '--key', lamp.key, '-V', 'mqttv311', '-i', clientId, '-q', '1', '-t', topic, '-C', '1', '-W', '5']).done;
    const own = await waitFor('lamp-1\'s retained desired', async () => {
      const r = await subscribe('ef/devices/lamp-1/twin/desired', 'lamp-1-sub');
      return r.code === 0 ? r : undefined;
    });
    expect(JSON.parse(own.stdout)).toMatchObject({ properties: { level: 5 } });
    const other = await subscribe('ef/devices/fan-1/twin/desired', 'lamp-1-sub');
    // SUBACK 0x80: mosquitto_sub says so and ends without a message.
    expect(other.stdout).toBe('');
    expect(other.stderr).toMatch(/All subscription requests were denied/);
  });

  it('another device\'s certificate cannot act for it: fan-1 publishing to lamp-1 is refused and changes nothing', async () => {
    const forged = await publishWith(fan, 'fan-1', 'ef/devices/lamp-1/twin/reported', JSON.stringify({ properties: { level: 99 } }));
    expect(forged.code).not.toBe(0);
    const impersonating = await publishWith(fan, 'lamp-1', 'ef/devices/lamp-1/twin/reported', JSON.stringify({ properties: { level: 98 } }), '127.0.0.21');
    expect(impersonating.code).not.toBe(0);
    expect(refusals('127.0.0.21')[0]).toMatch(/reserved for device "lamp-1"/);
    await waitFor('the refused publish logged', async () =>
      edge.proc.lines.some((l) => l.msg === 'MQTT publish refused' && l.device === 'fan-1' && l.topic === 'ef/devices/lamp-1/twin/reported'));
    await sleep(300);
    expect(await reportedLevel('lamp-1')).toBe(7);
  });

  it('a node certificate, another CA\'s certificate and an unlisted one are refused, each reason logged', async () => {
    const topic = 'ef/devices/lamp-1/twin/reported';
    expect((await publishWith(nodeCert, 'lamp-1', topic, '{}', '127.0.0.31')).code).not.toBe(0);
    expect((await publishWith(stranger, 'lamp-1', topic, '{}', '127.0.0.32')).code).not.toBe(0);
    await waitFor('refusals logged', async () => refusals('127.0.0.31').length > 0 && refusals('127.0.0.32').length > 0);
    expect(refusals('127.0.0.31')[0]).toMatch(/client certificate refused: certificate is not a device's \(O=edgefleet-node/);
    expect(refusals('127.0.0.32')[0]).toMatch(/client certificate refused: certificate not issued by the cloud CA/);
  });

  it('a certificate whose serial is removed from the Device is refused once the change syncs; the other still works', async () => {
    expect((await publishWith(lampSpare, 'lamp-1', 'ef/devices/lamp-1/twin/reported', JSON.stringify({ properties: { level: 8 } }))).code).toBe(0);
    expect((await tlsApi(cloud).call('DELETE', `/devices/lamp-1/certificates/${lampSpare.serial}`)).status).toBe(200);
    const refused = await waitFor('lamp-1\'s spare certificate refused', async () => {
      const r = await publishWith(lampSpare, 'lamp-1', 'ef/devices/lamp-1/twin/reported', '{}', '127.0.0.41');
      return r.code !== 0 ? r : undefined;
    });
    expect(refused.code).not.toBe(0);
    await waitFor('reason logged', async () => refusals('127.0.0.41').length > 0);
    expect(refusals('127.0.0.41')[0]).toMatch(new RegExp(`certificate ${lampSpare.serial} of device lamp-1 is not on the device's certificate list`));
    expect((await publishWith(lamp, 'lamp-1', 'ef/devices/lamp-1/twin/reported', JSON.stringify({ properties: { level: 9 } }))).code).toBe(0);
    await waitFor('cloud twin of lamp-1', async () => (await reportedLevel('lamp-1')) === 9);
  });

  it('a certificate made by edgectl device certificate logs in', async () => {
    const home = fleet.tempDir('edgectl-home-');
    const work = fleet.tempDir();
    writeFileSync(join(work, 'token'), cloud.token);
    const edgectl = (args: string[]) => runCliFromConfig(args, home);
    const configured = await edgectl(['--server', cloud.url, 'config', 'set-cluster', '--ca-pin', cloud.caPin!, '--token-file', join(work, 'token')]);
    expect(configured.code, configured.err).toBe(0);
    writeFileSync(join(work, 'devices.yaml'), 'kind: DeviceModel\nmetadata: { name: m }\nspec:\n  protocol: virtual\n  properties: [{ name: level, type: int, accessMode: ReadWrite }]\n'
      + '---\nkind: Device\nmetadata: { name: pump-1 }\nspec: { model: m, nodeName: edge-1, protocol: { name: virtual } }\n');
    const applied = await edgectl(['apply', '-f', join(work, 'devices.yaml')]);
    expect(applied.code, applied.err).toBe(0);
    const issued = await edgectl(['device', 'certificate', 'pump-1', '--out-dir', join(work, 'pump-1')]);
    expect(issued.err).toBe('');
    const serial = /serial ([0-9a-f]+)/.exec(issued.out)![1]!;
    const cert: TestCert = { cert: join(work, 'pump-1', 'pump-1.crt'), key: join(work, 'pump-1', 'pump-1.key'), serial };
    await waitFor('pump-1 accepted by its cloud-signed certificate', async () =>
      (await publishWith(cert, 'pump-1', 'ef/devices/pump-1/twin/reported', JSON.stringify({ properties: { level: 11 } }))).code === 0);
    await waitFor('cloud twin of pump-1', async () => (await reportedLevel('pump-1')) === 11);
  });

  it('--mqtt-tls-client-ca without the TLS listener is refused, naming the setting', async () => {
    const { runBin } = await import('../helpers/fleet.js');
    const proc = runBin('edgecore', ['--node', 'x', '--cloud-url', cloud.url, '--data-dir', fleet.tempDir(), '--mqtt-tls-client-ca', serverCert]);
    expect(await proc.exited).not.toBe(0);
    await proc.drained;
    expect(proc.stderr.join('\n')).toMatch(/mqttTlsClientCa.*set mqttTlsPort, mqttTlsCert and mqttTlsKey too/);
  });

  it('passwords keep working on the TLS listener', async () => {
    const { body } = await tlsApi(cloud).call<{ password: string }>('POST', '/devices/fan-1/credentials');
    const r = await runClient('mosquitto_pub', ['-h', '127.0.0.1', '-p', tlsPort, '--cafile', serverCert, '-V', 'mqttv311', '-i', 'fan-1', '-u', 'fan-1', '-P', body.password,
      '-q', '1', '-t', 'ef/devices/fan-1/twin/reported', '-m', JSON.stringify({ properties: { level: 3 } })]).done;
    expect(r).toMatchObject({ code: 0, stderr: '' });
    await waitFor('cloud twin of fan-1', async () => (await reportedLevel('fan-1')) === 3);
  });
});
