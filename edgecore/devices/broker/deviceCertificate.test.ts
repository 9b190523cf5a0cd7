import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../../../protocol/index.js';
import { makeDevice } from '../../../test/helpers/devices/deviceHubFixtures.js';
import { issueTestCert, makeTestCa, type TestCert } from '../../../test/helpers/devices/testCertificates.js';
import { normalizeSerial as normalizedSerial } from '../../../protocol/index.js';
import { deviceForCertificate, type PresentedCertificate } from './deviceCertificate.js';

/** The decision alone, over real certificates made by openssl; the TLS verdict is given as node:tls would give it. */
let dir: string;
let lamp: TestCert;
let node: TestCert;
/**
 * Taken once the certificates exist: openssl dates notBefore at issue (whole seconds), so a
 * clock read before a slow issue (a loaded machine) would find them not yet valid.
 */
let NOW: Date;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'device-cert-'));
  const ca = makeTestCa(dir, 'cloud-ca');
  lamp = issueTestCert(dir, ca, 'lamp', '/CN=lamp-1/O=edgefleet-device', '0a1b2c');
  node = issueTestCert(dir, ca, 'node', '/CN=lamp-1/O=edgefleet-node', '0d0e');
  NOW = new Date();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const presented = (cert: TestCert, chainVerified = true, chainError?: string): PresentedCertificate =>
  ({ certificate: new X509Certificate(readFileSync(cert.cert)), chainVerified, chainError });
const devices = (serials: string[], notAfter = new Date(Date.now() + 86_400_000).toISOString()) => {
  const device: Device = makeDevice('lamp-1', {});
  device.spec.certificates = serials.map((serial) => ({ serial, notAfter }));
  return (name: string) => (name === 'lamp-1' ? device : undefined);
};

describe('deviceForCertificate', () => {
  it('logs a listed device certificate in as its device, serial without leading zeros', () => {
    expect(lamp.serial).toBe('a1b2c');
    expect(deviceForCertificate(presented(lamp), true, devices(['a1b2c']), NOW)).toEqual({ ok: true, device: 'lamp-1', serial: 'a1b2c' });
  });

  it('refuses, saying why: no CA yet, another CA, expired, a node certificate, another node\'s device, an unlisted or lapsed serial', () => {
    const refused = (result: ReturnType<typeof deviceForCertificate>) => (result.ok ? 'accepted' : result.reason);
    expect(refused(deviceForCertificate(presented(lamp), false, devices(['a1b2c']), NOW))).toMatch(/no CA bundle/);
    expect(refused(deviceForCertificate(presented(lamp, false, 'unable to get local issuer certificate'), true, devices(['a1b2c']), NOW)))
      .toBe('certificate not issued by the cloud CA: unable to get local issuer certificate');
    expect(refused(deviceForCertificate(presented(lamp), true, devices(['a1b2c']), new Date(Date.now() + 3 * 86_400_000)))).toMatch(/^certificate expired at /);
    expect(refused(deviceForCertificate(presented(node), true, devices(['d0e']), NOW))).toMatch(/not a device's \(O=edgefleet-node, need O=edgefleet-device\)/);
    expect(refused(deviceForCertificate(presented(lamp), true, () => undefined, NOW))).toBe('certificate names device lamp-1, which is not on this node');
    expect(refused(deviceForCertificate(presented(lamp), true, devices(['ffff']), NOW))).toMatch(/certificate a1b2c of device lamp-1 is not on the device's certificate list/);
    expect(refused(deviceForCertificate(presented(lamp), true, devices(['a1b2c'], new Date(Date.now() - 1000).toISOString()), NOW))).toMatch(/a1b2c of device lamp-1 expired/);
  });

  it('normalizes serials as the cloud records them', () => {
    expect(normalizedSerial('000A1B')).toBe('a1b');
    expect(normalizedSerial('00')).toBe('0');
  });
});
