import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configuredCa, parseCaBundle, parseCaPin } from './caTrust.js';
import { readConfig, updateConfigFile } from './configFile.js';
import { UsageError } from './parse.js';

// A CERTIFICATE block cut short: looks like PEM, is no certificate (real ones come from real cloudcores in test/security/edgectlTrust.test.ts).
const CERT = `-----BEGIN CERTIFICATE-----
MIIBdTCCARugAwIBAgIUQTQ6X0Y0TWU8e8D0gAYmLbZyC9kwCgYIKoZIzj0EAwIw
DDEKMAgGA1UEAwwBdDAeFw0yNDAxMDEwMDAwMDBaFw0zNDAxMDEwMDAwMDBaMAwx
CjAIBgNVBAMMAXQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQK8mQ1WcG2qTqB
-----END CERTIFICATE-----
`;

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'edgectl-ca-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('CA pin and bundle', () => {
  it('takes 64 hex digits in any case, with or without sha256:', () => {
    const pin = 'AB'.repeat(32);
    expect(parseCaPin(pin)).toBe('ab'.repeat(32));
    expect(parseCaPin(`sha256:${pin}`)).toBe('ab'.repeat(32));
    expect(() => parseCaPin('ab'.repeat(31))).toThrow(/64 hex digits/);
  });

  it('refuses a bundle without a certificate, or with one that cannot be read', () => {
    expect(() => parseCaBundle('hello', 'x.pem')).toThrow(/x\.pem holds no PEM CERTIFICATE block/);
    expect(() => parseCaBundle(CERT, 'x.pem')).toThrow(/x\.pem: certificate 1 cannot be read/);
  });

  it('reads the path setting, naming the file that cannot be read', () => {
    expect(() => configuredCa({ server: 'https://x', certificateAuthority: join(dir, 'absent.pem') })).toThrow(/cannot read certificateAuthority file .*absent\.pem/);
    expect(configuredCa({ server: 'https://x' })).toBeUndefined();
  });
});

describe('config file', () => {
  it('sets and removes keys, keeping the others and their comments, 0600', () => {
    const path = join(dir, 'sub', 'config.yaml');
    updateConfigFile(path, { server: 'https://a:1' });
    writeFileSync(path, `# mine\n${readFileSync(path, 'utf8')}token: t\ncertificateAuthority: ca.pem\n`);
    updateConfigFile(path, { server: 'https://b:2', certificateAuthority: undefined, certificateAuthorityData: `${CERT}` });
    const text = readFileSync(path, 'utf8');
    expect(text).toContain('# mine');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700);
    expect(readConfig(path, dir)).toEqual({ server: 'https://b:2', token: 't', certificateAuthorityData: CERT });
  });

  it('resolves a relative certificateAuthority against the file, and refuses both forms at once', () => {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, 'certificateAuthority: ca.pem\n');
    expect(readConfig(path, dir).certificateAuthority).toBe(join(dir, 'ca.pem'));
    writeFileSync(path, `certificateAuthority: ca.pem\ncertificateAuthorityData: x\n`);
    expect(() => readConfig(path, dir)).toThrow(UsageError);
    expect(() => readConfig(path, dir)).toThrow(/sets both certificateAuthority and certificateAuthorityData/);
  });
});
