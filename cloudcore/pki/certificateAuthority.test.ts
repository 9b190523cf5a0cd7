import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { caBundlePin, DEVICE_CERT_ORG, newKeyAndCsr, NODE_CERT_ORG } from '../../protocol/index.js';
import { CertificateAuthority, CertificateRequestError } from './certificateAuthority.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
const scratch = () => { const d = mkdtempSync(join(tmpdir(), 'ef-ca-')); dirs.push(d); return d; };
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function opensslVerify(dir: string, caPem: string, certPem: string): string {
  writeFileSync(join(dir, 'ca.pem'), caPem);
  writeFileSync(join(dir, 'leaf.pem'), certPem);
  return execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
}

describe('CertificateAuthority', () => {
  it('creates its CA once (key 0600 in a 0700 dir) and loads the same one on the next start', async () => {
    const dataDir = scratch();
    const first = await CertificateAuthority.open({ dataDir }, log);
    expect(first.origin).toBe('created');
    expect(statSync(join(dataDir, 'pki', 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'pki')).mode & 0o777).toBe(0o700);
    const again = await CertificateAuthority.open({ dataDir }, log);
    expect(again.origin).toBe('loaded');
    expect(again.pin).toBe(first.pin);
    expect(again.pin).toBe(caBundlePin(first.bundlePem));
  });

  it('signs a node CSR into a client certificate that openssl verifies and that names the node', async () => {
    const dir = scratch();
    const ca = await CertificateAuthority.open({ dataDir: dir }, log);
    const { csrPem } = await newKeyAndCsr('edge-1', NODE_CERT_ORG);
    const issued = await ca.signNode('edge-1', csrPem, 3600);
    expect(opensslVerify(dir, ca.bundlePem, issued.pem)).toContain(': OK');
    const text = execFileSync('openssl', ['x509', '-noout', '-subject', '-ext', 'extendedKeyUsage,subjectAltName', '-serial'], { input: issued.pem, encoding: 'utf8' });
    expect(text).toMatch(/CN ?= ?edge-1/);
    expect(text).toContain('TLS Web Client Authentication');
    expect(text).toContain('DNS:edge-1');
    expect(text.toLowerCase()).toContain(`serial=${issued.serial}`);
    expect(ca.issued(new X509Certificate(issued.pem))).toBe(true);
  });

  it('refuses a CSR for another node, a device CSR as a node, garbage and a huge request', async () => {
    const ca = await CertificateAuthority.open({ dataDir: scratch() }, log);
    const other = await newKeyAndCsr('edge-2', NODE_CERT_ORG);
    await expect(ca.signNode('edge-1', other.csrPem, 60)).rejects.toMatchObject({ problem: 'wrong-subject' });
    const device = await newKeyAndCsr('edge-1', DEVICE_CERT_ORG);
    await expect(ca.signNode('edge-1', device.csrPem, 60)).rejects.toBeInstanceOf(CertificateRequestError);
    await expect(ca.signNode('edge-1', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', 60)).rejects.toMatchObject({ problem: 'malformed' });
    await expect(ca.signNode('edge-1', 'x'.repeat(10_000), 60)).rejects.toMatchObject({ problem: 'too-large' });
  });

  it('issues a server certificate for its names and addresses', async () => {
    const dir = scratch();
    const ca = await CertificateAuthority.open({ dataDir: dir }, log);
    const server = await ca.issueServer(['cloud.example', '127.0.0.1', '::1'], 3600);
    expect(opensslVerify(dir, ca.bundlePem, server.pem)).toContain(': OK');
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], { input: server.pem, encoding: 'utf8' });
    expect(text).toContain('DNS:cloud.example');
    expect(text).toContain('IP Address:127.0.0.1');
  });

  it('takes an operator CA and refuses one whose key does not match', async () => {
    const dir = scratch();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=operator CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-keyout', join(dir, 'op.key'), '-out', join(dir, 'op.crt'), '-days', '2'], { stdio: 'ignore' });
    const ca = await CertificateAuthority.open({ dataDir: dir, caCert: join(dir, 'op.crt'), caKey: join(dir, 'op.key') }, log);
    expect(ca.origin).toBe('operator');
    const { csrPem } = await newKeyAndCsr('edge-1', NODE_CERT_ORG);
    expect(opensslVerify(dir, ca.bundlePem, (await ca.signNode('edge-1', csrPem, 60)).pem)).toContain(': OK');
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(dir, 'other.key')]);
    await expect(CertificateAuthority.open({ dataDir: dir, caCert: join(dir, 'op.crt'), caKey: join(dir, 'other.key') }, log)).rejects.toThrow(/does not belong/);
  });
});
