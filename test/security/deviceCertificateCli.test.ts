import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../../protocol/index.js';
import { Fleet, type Cloud } from '../helpers/fleet.js';
import { runCliFromConfig } from '../helpers/edgectl/runCli.js';

const openssl = promisify(execFile);
const READY = existsSync('/usr/bin/openssl');
if (!READY) console.warn('[edgectl device certificate] SKIPPED: needs openssl to check the issued certificate');

/**
 * `edgectl device certificate NAME` against a real cloudcore over HTTPS (trusted through the
 * config file): the key is made locally and written 0600, the certificate verifies with Debian's
 * openssl against the CA bundle written beside it, the serial lands on the Device's allow-list,
 * an existing key is never overwritten, and `revoke` takes the serial off again.
 */
describe.skipIf(!READY)('edgectl device certificate', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let home: string;
  let out: string;

  /** edgectl in-process with nothing but the config file in `home` (no EF_* env, no extra CAs). */
  const edgectl = (args: string[]) => runCliFromConfig(args, home);
  const certificatesOf = async (name: string): Promise<string[]> =>
    ((JSON.parse((await edgectl(['get', 'device', name, '-o', 'json'])).out) as Device).spec.certificates ?? []).map((c) => c.serial);

  beforeAll(async () => {
    cloud = await fleet.startCloud({ tls: true });
    home = fleet.tempDir('edgectl-home-');
    out = join(fleet.tempDir(), 'certs');
    const dir = fleet.tempDir();
    writeFileSync(join(dir, 'token'), cloud.token);
    expect((await edgectl(['--server', cloud.url, 'config', 'set-cluster', '--ca-pin', cloud.caPin!, '--token-file', join(dir, 'token')])).code).toBe(0);
    writeFileSync(join(dir, 'devices.yaml'), 'kind: DeviceModel\nmetadata: { name: m }\nspec:\n  protocol: virtual\n  properties: [{ name: level, type: int }]\n'
      + '---\nkind: Device\nmetadata: { name: lamp-1 }\nspec: { model: m, nodeName: edge-1, protocol: { name: virtual } }\n');
    expect((await edgectl(['apply', '-f', join(dir, 'devices.yaml')])).code).toBe(0);
  });
  afterAll(() => fleet.cleanup());

  let serial = '';

  it('writes a local key (0600), a certificate openssl verifies against the CA bundle, and lists the serial on the device', async () => {
    const r = await edgectl(['device', 'certificate', 'lamp-1', '--out-dir', out, '--lifetime-days', '2']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    serial = /serial ([0-9a-f]+), valid until (\S+)/.exec(r.out)![1]!;
    expect(r.out).toContain(`mosquitto_pub -h <node address> -p <mqtt TLS port> --cafile ${join(out, 'ca.crt')} --cert ${join(out, 'lamp-1.crt')} --key ${join(out, 'lamp-1.key')}`);
    expect(statSync(join(out, 'lamp-1.key')).mode & 0o777).toBe(0o600);
    const verified = await openssl('openssl', ['verify', '-CAfile', join(out, 'ca.crt'), join(out, 'lamp-1.crt')]);
    expect(verified.stdout).toContain(': OK');
    const subject = await openssl('openssl', ['x509', '-in', join(out, 'lamp-1.crt'), '-noout', '-subject', '-serial', '-enddate']);
    expect(subject.stdout).toMatch(/CN ?= ?lamp-1/);
    expect(subject.stdout).toMatch(/O ?= ?edgefleet-device/);
    expect(subject.stdout.match(/serial=(\w+)/)![1]!.toLowerCase().replace(/^0+/, '')).toBe(serial);
    // The key pair matches the certificate: the private key stayed here and nowhere else.
    const keyPub = await openssl('openssl', ['pkey', '-in', join(out, 'lamp-1.key'), '-pubout']);
    const certPub = await openssl('openssl', ['x509', '-in', join(out, 'lamp-1.crt'), '-noout', '-pubkey']);
    expect(keyPub.stdout).toBe(certPub.stdout);
    expect(await certificatesOf('lamp-1')).toEqual([serial]);
  });

  it('refuses to overwrite an existing key, issuing nothing', async () => {
    const key = readFileSync(join(out, 'lamp-1.key'), 'utf8');
    const again = await edgectl(['device', 'certificate', 'lamp-1', '--out-dir', out]);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`${join(out, 'lamp-1.key')} exists: refusing to overwrite a device's private key`);
    expect(readFileSync(join(out, 'lamp-1.key'), 'utf8')).toBe(key);
    expect(await certificatesOf('lamp-1')).toEqual([serial]);
  });

  it('an unknown device is refused and leaves no key behind; bad flags are refused before any request', async () => {
    const unknown = await edgectl(['device', 'certificate', 'nope', '--out-dir', out]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/not found/);
    expect(existsSync(join(out, 'nope.key'))).toBe(false);
    const bad = await edgectl(['device', 'certificate', 'lamp-1', '--lifetime-days', '0']);
    expect(bad.err).toMatch(/invalid --lifetime-days "0"/);
  });

  it('revoke takes the serial off the device (openssl\'s serial spelling accepted)', async () => {
    const r = await edgectl(['device', 'certificate', 'revoke', 'lamp-1', `serial=00${serial.toUpperCase()}`]);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toBe(`device/lamp-1 certificate ${serial} revoked; 0 certificate(s) left\n`);
    expect(await certificatesOf('lamp-1')).toEqual([]);
    const twice = await edgectl(['device', 'certificate', 'revoke', 'lamp-1', serial]);
    expect(twice.err).toMatch(/has no certificate/);
  });
});
