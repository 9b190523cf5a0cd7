import { execFile, execFileSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitBearerIdentity, commitCertificateIdentity, credentialPath, loadIdentity, pkiDir } from '../../edgecore/identity/identityStore.js';
import { JoinRefusedError, joinCloud } from '../../edgecore/identity/join.js';
import { NodeIdentity } from '../../edgecore/identity/nodeIdentity.js';
import { newKeyAndCsr, NODE_CERT_ORG } from '../../protocol/certificates.js';
import { Fleet, type Cloud, type LogLine } from '../helpers/fleet.js';
import { cloudCaBundle, httpsCall, tlsApi } from '../helpers/tlsClient.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The edge's join with a pinned token over real TLS, against the real cloudcore (and a second
 * one as the impostor): the CA bundle is checked against the token's pin before anything secret
 * is sent, the key is made on the node and written 0600, and the certificate verifies with
 * Debian's openssl. What a cloudcore saw is read from its own log and store.
 */

const run = promisify(execFile);
const log = pino({ level: 'silent' });
const fleet = new Fleet();
const dirs: string[] = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'ef-identity-')); dirs.push(d); return d; };
let cloud: Cloud;
let impostor: Cloud;

beforeAll(async () => {
  cloud = await fleet.startCloud({ tls: true });
  impostor = await fleet.startCloud({ tls: true, dataDir: join(fleet.root, 'impostor') });
});
afterAll(async () => {
  await fleet.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A new single-use join token for `node`, pinned to the cloud's CA bundle. */
const newToken = (node = 'edge-1', of: Cloud = cloud) => tlsApi(of).token(node);
/** The cloud's own log of joins (accepted and refused), in order. */
const joinLines = (of: Cloud): LogLine[] => of.proc.lines.filter((l) => l.msg === 'node joined' || l.msg === 'join refused');
/**
 * The cloud's join log lines after the first `before`, once there are `count` of them. The log
 * arrives on a pipe: a later line proves every earlier one has been read, so "nothing else was
 * logged" is asserted by waiting for a known later line rather than by sleeping.
 */
const joinsAfter = (of: Cloud, before: number, count: number) =>
  waitFor(`${count} join log line(s) from cloudcore`, () => { const lines = joinLines(of).slice(before); return lines.length >= count ? lines : undefined; }, 10_000);

async function joinedNode(dataDir: string, cloudUrl: string, token: string): Promise<{ identity: NodeIdentity; used: boolean }> {
  const identity = new NodeIdentity({ dataDir, node: 'edge-1', cloudUrls: [cloudUrl], joinToken: token, log });
  await identity.start();
  let used = false;
  await identity.withIdentity(async () => { used = true; });
  await identity.stop();
  return { identity, used };
}

describe('pinned join over HTTPS', () => {
  it('joins with no NODE_EXTRA_CA_CERTS: key 0600 in a 0700 dir, a certificate openssl verifies naming the node', async () => {
    // Whatever NODE_EXTRA_CA_CERTS holds here (the host's bundle), it is not this cloud's CA: the pin is the only trust.
    const bundle = cloudCaBundle(cloud);
    const extra = process.env.NODE_EXTRA_CA_CERTS;
    if (extra !== undefined && existsSync(extra)) expect(readFileSync(extra, 'utf8')).not.toContain(bundle.trim().split('\n')[1]!);
    const dataDir = tempDir();
    const joinsBefore = joinLines(cloud).length;
    const { identity, used } = await joinedNode(dataDir, cloud.url, await newToken());
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

    // The cloud logged exactly this one join, of this certificate; it was signed for the node's own key (a CSR).
    const cert = new X509Certificate(readFileSync(join(pki, 'node.crt')));
    const joined = await joinsAfter(cloud, joinsBefore, 1);
    expect(joined.map((l) => [l.msg, l.node])).toEqual([['node joined', 'edge-1']]);
    expect(joined[0]!.serial).toBe(cert.serialNumber.toLowerCase().replace(/^0+/, ''));
    const key = readFileSync(join(pki, 'node.key'), 'utf8');
    expect(cert.publicKey.export({ type: 'spki', format: 'pem' })).toBe(createPublicKey(key).export({ type: 'spki', format: 'pem' }));
    // The key never reached the cloud: not in its log, not in its answers about the node.
    const keyBody = key.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    expect(cloud.proc.rawLines.some((l) => l.includes(keyBody.slice(0, 40)) || l.includes('PRIVATE KEY'))).toBe(false);
    const node = await tlsApi(cloud).call('GET', '/nodes/edge-1');
    expect(node.text).not.toContain(keyBody.slice(0, 40));
  });

  it('refuses an impostor whose CA does not match the pin BEFORE sending the token, saying what happened', async () => {
    const dataDir = tempDir();
    const token = await newToken();
    const { identity, used } = await joinedNode(dataDir, impostor.url, token);
    expect(used).toBe(false);
    expect(identity.joinError).toContain(`the server at ${impostor.url} presented a CA bundle whose SHA-256 is`);
    expect(identity.joinError).toContain('the join token pins');
    expect(identity.joinError).toContain('nothing was sent');
    // The impostor cloudcore logged no join (accepted or refused) before the one made with its own token
    // afterwards, never saw the token's secret, and holds no such node.
    expect((await tlsApi(impostor).call('GET', '/nodes/edge-1')).status).toBe(404);
    expect((await joinedNode(tempDir(), impostor.url, await newToken('edge-1', impostor))).identity.joinError).toBeNull();
    expect((await joinsAfter(impostor, 0, 1)).map((l) => l.msg)).toEqual(['node joined']);
    const secret = token.split('.').at(-1)!;
    expect(impostor.proc.rawLines.some((l) => l.includes(secret))).toBe(false);
    expect(existsSync(pkiDir(dataDir))).toBe(false);
  });

  it('a server certificate from a CA outside the pinned bundle: the join names the bundle and --ca-extra-trust, not NODE_EXTRA_CA_CERTS', async () => {
    // An operator's server certificate (--tls-cert) whose chain file leaves out its root, and no --ca-extra-trust:
    // cloudcore serves a bundle that cannot verify its own server certificate.
    const dir = fleet.tempDir();
    const at = (name: string) => join(dir, name);
    writeFileSync(at('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '1', '-subj', '/CN=EdgeFleet foreign test CA']);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1']);
    await run('openssl', ['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.pem'), '-days', '1', '-extfile', at('san.ext')]);
    const odd = await fleet.startCloud({ tls: true, dataDir: join(fleet.root, 'odd'), extra: ['--tls-cert', at('server.pem'), '--tls-key', at('server.key')] });
    try {
      const foreignCa = readFileSync(at('ca.pem'), 'utf8');
      const token = await tlsApi(odd, { ca: foreignCa }).token('edge-1');
      const attempt = joinCloud({ cloudUrl: odd.url, node: 'edge-1', token, allowUnpinnedToken: false, warn: () => undefined });
      await expect(attempt).rejects.toThrow(/not signed by a CA in the CA bundle the token pins .*--ca-extra-trust/);
      // The pin matched, so the CSR join was tried, but the TLS handshake failed before any byte of it was sent.
      // A join made afterwards by a client that trusts the foreign CA, with a made-up token, is the first the cloud logs.
      const wrongSecret = token.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
      const probe = await httpsCall(`${odd.url}/hub/v1/join`, { method: 'POST', ca: foreignCa, body: { node: 'edge-1', token: wrongSecret, csr: (await newKeyAndCsr('edge-1', NODE_CERT_ORG)).csrPem } });
      expect(probe.status, probe.text).toBe(401);
      expect((await joinsAfter(odd, 0, 1)).map((l) => l.msg)).toEqual(['join refused']);
      expect(odd.proc.rawLines.some((l) => l.includes(token.split('.').at(-1)!))).toBe(false);
    } finally {
      await odd.proc.stop();
    }
  });

  it('refuses an unpinned token over https unless allowed, sending nothing', async () => {
    const pinned = await newToken();
    const unpinned = pinned.replace(/^EF1-[0-9a-f]{64}-/, '');
    const joinsBefore = joinLines(cloud).length;
    const attempt = joinCloud({ cloudUrl: cloud.url, node: 'edge-1', token: unpinned, allowUnpinnedToken: false, warn: () => undefined });
    await expect(attempt).rejects.toBeInstanceOf(JoinRefusedError);
    await expect(attempt).rejects.toThrow(/does not pin the cloud's CA.*--allow-unpinned-token/);
    // Allowed: the system's CAs decide, and they do not know this cloud's CA.
    const warnings: string[] = [];
    const allowed = joinCloud({ cloudUrl: cloud.url, node: 'edge-1', token: unpinned, allowUnpinnedToken: true, warn: (_o, m) => warnings.push(m) });
    await expect(allowed).rejects.toThrow(/not signed by a CA this node trusts/);
    expect(warnings.join()).toMatch(/unpinned token/);
    // Nothing reached the cloud: the (single-use) token is still good for a pinned join, the first join logged since.
    const { identity } = await joinedNode(tempDir(), cloud.url, pinned);
    expect(identity.joinError).toBeNull();
    expect((await joinsAfter(cloud, joinsBefore, 1)).map((l) => l.msg)).toEqual(['node joined']);
  });

  it('a restart with a new join token joins again and replaces the identity; the same token does not', async () => {
    const dataDir = tempDir();
    const token = await newToken();
    const joinsBefore = joinLines(cloud).length;
    await joinedNode(dataDir, cloud.url, token);
    await joinsAfter(cloud, joinsBefore, 1);
    const first = loadIdentity(dataDir);
    // Same token again (a unit file keeps the flag): no join; the new token's join is the next one logged.
    await joinedNode(dataDir, cloud.url, token);
    const { identity } = await joinedNode(dataDir, cloud.url, await newToken());
    expect(identity.joinError).toBeNull();
    expect((await joinsAfter(cloud, joinsBefore, 2)).map((l) => l.msg)).toEqual(['node joined', 'node joined']);
    await new Promise((r) => setTimeout(r, 300));
    expect(joinLines(cloud).length).toBe(joinsBefore + 2);
    const second = loadIdentity(dataDir);
    expect(second?.mode === 'certificate' && first?.mode === 'certificate' && second.certPem !== first.certPem).toBe(true);
  });

  it('an edge from before node certificates (a bearer credential file) given a token for an https cloud joins and drops the credential', async () => {
    const dataDir = tempDir();
    writeFileSync(credentialPath(dataDir), 'edge-1.00ff\n', { mode: 0o600 });
    expect(loadIdentity(dataDir)).toMatchObject({ mode: 'bearer', credential: 'edge-1.00ff', joinTokenSha256: null });
    const { identity } = await joinedNode(dataDir, cloud.url, await newToken());
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
    await joinedNode(dataDir, cloud.url, await newToken());
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
    await joinedNode(dataDir, cloud.url, await newToken());
    const old = loadIdentity(dataDir);
    if (old?.mode !== 'certificate') throw new Error('expected a certificate identity');
    const pki = pkiDir(dataDir);
    const oldGeneration = readdirSync(pki).find((e) => e.startsWith('g-'));
    await joinedNode(dataDir, cloud.url, await newToken());
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
    await joinedNode(dataDir, cloud.url, await newToken());
    const id = loadIdentity(dataDir);
    if (id?.mode !== 'certificate') throw new Error('expected a certificate identity');
    const other = tempDir();
    await joinedNode(other, cloud.url, await newToken());
    const otherId = loadIdentity(other);
    if (otherId?.mode !== 'certificate') throw new Error('expected a certificate identity');
    // A mismatched pair written behind the store's back is refused when read, naming the problem.
    commitCertificateIdentity(dataDir, { ...id, keyPem: otherId.keyPem });
    expect(() => loadIdentity(dataDir)).toThrow(/node\.crt does not carry the public half of node\.key/);
  });
});
