import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { commitBearerIdentity, commitCertificateIdentity, credentialPath, loadIdentity, pkiDir } from '../../edgecore/identity/identityStore.js';
import { JoinRefusedError, joinCloud } from '../../edgecore/identity/join.js';
import { NodeIdentity } from '../../edgecore/identity/nodeIdentity.js';
import { TlsStubCloud } from './tlsStubCloud.js';

/**
 * The edge's join with a pinned token over real TLS (a stub hub on the real cloud CA code):
 * the CA bundle is checked against the token's pin before anything secret is sent, the key is
 * made on the node and written 0600, and the certificate verifies with Debian's openssl.
 */

const log = pino({ level: 'silent' });
const dirs: string[] = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'ef-identity-')); dirs.push(d); return d; };
let cloud: TlsStubCloud;
let impostor: TlsStubCloud;

beforeAll(async () => {
  cloud = await TlsStubCloud.start({ lifetimeSeconds: 3600 });
  impostor = await TlsStubCloud.start({ lifetimeSeconds: 3600 });
});
afterAll(async () => {
  await cloud.stop();
  await impostor.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
afterEach(() => { cloud.requests.length = 0; impostor.requests.length = 0; });

async function joinedNode(dataDir: string, cloudUrl: string, token: string): Promise<{ identity: NodeIdentity; used: boolean }> {
  const identity = new NodeIdentity({ dataDir, node: 'edge-1', cloudUrl, joinToken: token, log });
  await identity.start();
  let used = false;
  await identity.withIdentity(async () => { used = true; });
  await identity.stop();
  return { identity, used };
}

describe('pinned join over HTTPS', () => {
  it('joins with no NODE_EXTRA_CA_CERTS: key 0600 in a 0700 dir, a certificate openssl verifies naming the node', async () => {
    // Whatever NODE_EXTRA_CA_CERTS holds here (the host's bundle), it is not this cloud's CA: the pin is the only trust.
    const extra = process.env.NODE_EXTRA_CA_CERTS;
    if (extra !== undefined && existsSync(extra)) expect(readFileSync(extra, 'utf8')).not.toContain(cloud.bundlePem.trim().split('\n')[1]!);
    const dataDir = tempDir();
    const { identity, used } = await joinedNode(dataDir, cloud.url, cloud.token);
    expect(identity.joinError).toBeNull();
    expect(used).toBe(true);
    expect(identity.linkAuth()?.mode).toBe('certificate');

    const pki = pkiDir(dataDir);
    expect(statSync(pki).mode & 0o777).toBe(0o700);
    expect(statSync(join(pki, 'node.key')).mode & 0o777).toBe(0o600);
    const verified = execFileSync('openssl', ['verify', '-CAfile', join(pki, 'ca-bundle.crt'), join(pki, 'node.crt')], { encoding: 'utf8' });
    expect(verified.trim()).toBe(`${join(pki, 'node.crt')}: OK`);
    const subject = execFileSync('openssl', ['x509', '-noout', '-subject', '-in', join(pki, 'node.crt')], { encoding: 'utf8' });
    expect(subject).toMatch(/CN ?= ?edge-1/);
    expect(subject).toMatch(/O ?= ?edgefleet-node/);

    // The order the pin demands: the CA bundle first, then the join (with a CSR, never the key).
    expect(cloud.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /hub/v1/ca', 'POST /hub/v1/join']);
    const key = readFileSync(join(pki, 'node.key'), 'utf8');
    const keyBody = key.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    for (const r of cloud.requests) {
      expect(r.body).not.toContain(keyBody.slice(0, 40));
      expect(r.body).not.toContain('PRIVATE KEY');
    }
    expect(JSON.parse(cloud.requests[1]!.body).csr).toMatch(/BEGIN CERTIFICATE REQUEST/);
  });

  it('refuses an impostor whose CA does not match the pin BEFORE sending the token, saying what happened', async () => {
    const dataDir = tempDir();
    const { identity, used } = await joinedNode(dataDir, impostor.url, cloud.token);
    expect(used).toBe(false);
    expect(identity.joinError).toContain(`the server at ${impostor.url} presented a CA bundle whose SHA-256 is`);
    expect(identity.joinError).toContain('the join token pins');
    expect(identity.joinError).toContain('nothing was sent');
    // The impostor saw one unauthenticated GET of its CA bundle: no join, no token, no CSR.
    expect(impostor.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /hub/v1/ca']);
    const secret = cloud.token.split('.').at(-1)!;
    expect(impostor.requests.some((r) => r.body.includes(secret) || r.path.includes(secret))).toBe(false);
    expect(existsSync(pkiDir(dataDir))).toBe(false);
  });

  it('a server certificate from a CA outside the pinned bundle: the join names the bundle and --ca-extra-trust, not NODE_EXTRA_CA_CERTS', async () => {
    const odd = await TlsStubCloud.start({ lifetimeSeconds: 3600, foreignServerCert: true });
    try {
      const attempt = joinCloud({ cloudUrl: odd.url, node: 'edge-1', token: odd.token, allowUnpinnedToken: false, warn: () => undefined });
      await expect(attempt).rejects.toThrow(/not signed by a CA in the CA bundle the token pins .*--ca-extra-trust/);
      // The pin matched, so the CSR join was tried, but the TLS handshake failed before any byte of it was sent.
      expect(odd.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /hub/v1/ca']);
    } finally {
      await odd.stop();
    }
  });

  it('refuses an unpinned token over https unless allowed, sending nothing', async () => {
    const attempt = joinCloud({ cloudUrl: cloud.url, node: 'edge-1', token: cloud.unpinnedToken, allowUnpinnedToken: false, warn: () => undefined });
    await expect(attempt).rejects.toBeInstanceOf(JoinRefusedError);
    await expect(attempt).rejects.toThrow(/does not pin the cloud's CA.*--allow-unpinned-token/);
    expect(cloud.requests).toEqual([]);
    // Allowed: the system's CAs decide, and they do not know this cloud's CA.
    const warnings: string[] = [];
    const allowed = joinCloud({ cloudUrl: cloud.url, node: 'edge-1', token: cloud.unpinnedToken, allowUnpinnedToken: true, warn: (_o, m) => warnings.push(m) });
    await expect(allowed).rejects.toThrow(/not signed by a CA this node trusts/);
    expect(warnings.join()).toMatch(/unpinned token/);
  });

  it('a restart with a new join token joins again and replaces the identity; the same token does not', async () => {
    const dataDir = tempDir();
    await joinedNode(dataDir, cloud.url, cloud.token);
    const first = loadIdentity(dataDir);
    cloud.requests.length = 0;
    // Same token again (a unit file keeps the flag): no join.
    await joinedNode(dataDir, cloud.url, cloud.token);
    expect(cloud.requests).toEqual([]);
    cloud.tokenSecret = 'fedcba9876543210';
    try {
      const { identity } = await joinedNode(dataDir, cloud.url, cloud.token);
      expect(identity.joinError).toBeNull();
      expect(cloud.requests.map((r) => r.path)).toContain('/hub/v1/join');
      const second = loadIdentity(dataDir);
      expect(second?.mode === 'certificate' && first?.mode === 'certificate' && second.certPem !== first.certPem).toBe(true);
    } finally {
      cloud.tokenSecret = '0123456789abcdef';
    }
  });

  it('an edge from before node certificates (a bearer credential file) given a token for an https cloud joins and drops the credential', async () => {
    const dataDir = tempDir();
    writeFileSync(credentialPath(dataDir), 'edge-1.00ff\n', { mode: 0o600 });
    expect(loadIdentity(dataDir)).toMatchObject({ mode: 'bearer', credential: 'edge-1.00ff', joinTokenSha256: null });
    const { identity } = await joinedNode(dataDir, cloud.url, cloud.token);
    expect(identity.joinError).toBeNull();
    expect(identity.current?.mode).toBe('certificate');
    expect(existsSync(credentialPath(dataDir))).toBe(false);
    // And the other way: a bearer join (a cloud on plain HTTP) replaces a certificate identity whole.
    commitBearerIdentity(dataDir, { mode: 'bearer', credential: 'edge-1.abcd', expiresAt: null, issuedAt: new Date().toISOString(), joinTokenSha256: null });
    expect(loadIdentity(dataDir)).toMatchObject({ mode: 'bearer', credential: 'edge-1.abcd' });
    expect(existsSync(join(pkiDir(dataDir), 'current'))).toBe(false);
  });
});

describe('identity commit', () => {
  it('a crash mid-commit leaves the old complete identity, and the leftovers are swept', async () => {
    const dataDir = tempDir();
    await joinedNode(dataDir, cloud.url, cloud.token);
    const before = loadIdentity(dataDir);
    const pki = pkiDir(dataDir);
    // What a crash between writing a new generation and swapping `current` leaves behind.
    mkdirSync(join(pki, 'g-zzzz-deadbeef'), { mode: 0o700 });
    writeFileSync(join(pki, 'g-zzzz-deadbeef', 'node.key'), 'half a key', { mode: 0o600 });
    symlinkSync('g-zzzz-deadbeef', join(pki, 'current.tmp-4242'));
    expect(loadIdentity(dataDir)).toEqual(before);
    expect(readdirSync(pki).filter((e) => e.startsWith('g-'))).toHaveLength(1);
    expect(existsSync(join(pki, 'current.tmp-4242'))).toBe(false);
  });

  it('a new generation replaces the old one whole; the stable paths follow it', async () => {
    const dataDir = tempDir();
    await joinedNode(dataDir, cloud.url, cloud.token);
    const old = loadIdentity(dataDir);
    if (old?.mode !== 'certificate') throw new Error('expected a certificate identity');
    const pki = pkiDir(dataDir);
    const oldGeneration = readdirSync(pki).find((e) => e.startsWith('g-'));
    cloud.tokenSecret = '00aa';
    try {
      await joinedNode(dataDir, cloud.url, cloud.token);
    } finally {
      cloud.tokenSecret = '0123456789abcdef';
    }
    const now = loadIdentity(dataDir);
    if (now?.mode !== 'certificate') throw new Error('expected a certificate identity');
    expect(readFileSync(join(pki, 'node.crt'), 'utf8')).toBe(now.certPem);
    expect(readFileSync(join(pki, 'node.key'), 'utf8')).toBe(now.keyPem);
    expect(now.keyPem).not.toBe(old.keyPem);
    expect(existsSync(join(pki, oldGeneration!))).toBe(false);
    expect(lstatSync(join(pki, 'current')).isSymbolicLink()).toBe(true);
  });

  it('refuses to commit a certificate made for another key (nothing changes)', async () => {
    const dataDir = tempDir();
    await joinedNode(dataDir, cloud.url, cloud.token);
    const id = loadIdentity(dataDir);
    if (id?.mode !== 'certificate') throw new Error('expected a certificate identity');
    const other = tempDir();
    await joinedNode(other, cloud.url, cloud.token);
    const otherId = loadIdentity(other);
    if (otherId?.mode !== 'certificate') throw new Error('expected a certificate identity');
    // A mismatched pair written behind the store's back is refused when read, naming the problem.
    commitCertificateIdentity(dataDir, { ...id, keyPem: otherId.keyPem });
    expect(() => loadIdentity(dataDir)).toThrow(/node\.crt does not carry the public half of node\.key/);
  });
});
