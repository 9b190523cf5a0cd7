import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../protocol/index.js';
import { HubTestKit, makeDevice, waitFor } from '../../test/helpers/devices/deviceHubFixtures.js';
import { killClients, mosquittoClientsAvailable, runClient } from '../../test/helpers/devices/mosquittoClients.js';
import { issueTestCert, makeTestCa, type TestCert } from '../../test/helpers/devices/testCertificates.js';

/**
 * The device CA of the hub's TLS listener changes while it runs (the node's identity renewed,
 * the cloud CA rotated): after reloadDeviceTrust() new connections are checked against the new
 * bundle, with no restart. Debian's mosquitto_pub as the device.
 */
const skip = !mosquittoClientsAvailable;
if (skip) console.warn('deviceHubCertificates.test.ts skipped: mosquitto_pub/mosquitto_sub not found');

let kit: HubTestKit;
beforeEach(() => { kit = new HubTestKit(); });
afterEach(async () => {
  await killClients();
  await kit.cleanup();
});

describe.skipIf(skip)('device CA reload', () => {
  it('a certificate of a CA the listener did not trust logs in once the bundle naming it is reloaded', async () => {
    const serverKey = join(kit.dir, 'server.key');
    const serverCert = join(kit.dir, 'server.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', serverKey, '-out', serverCert,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const oldCa = makeTestCa(kit.dir, 'old-ca');
    const newCa = makeTestCa(kit.dir, 'new-ca');
    const cert: TestCert = issueTestCert(kit.dir, newCa, 'pump', '/CN=pump-1/O=edgefleet-device', '0c01');
    let bundle = oldCa.certPem;
    const { hub, tlsPort } = await kit.startHub({
      tls: { port: 0, cert: readFileSync(serverCert, 'utf8'), key: readFileSync(serverKey, 'utf8'), deviceCa: () => bundle },
    });
    const device = makeDevice('pump-1');
    device.spec.certificates = [{ serial: cert.serial, notAfter: new Date(Date.now() + 86_400_000).toISOString() }];
    hub.setDevices([device]);
    const publish = () => runClient('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', serverCert, '--cert', cert.cert, '--key', cert.key,
      '-V', 'mqttv311', '-i', 'pump-1', '-q', '1', '-t', deviceTopics('pump-1').reported, '-m', '{"properties":{"temperature":20}}']).done;

    const before = await publish();
    expect(before.code).not.toBe(0);
    expect(before.stderr).toMatch(/not authori[sz]ed/i);

    bundle = oldCa.certPem + newCa.certPem;
    hub.reloadDeviceTrust();
    expect(await publish()).toMatchObject({ code: 0, stderr: '' });
    await waitFor(() => kit.twinReports('pump-1').length > 0, 'the report upstream');
  });
});
