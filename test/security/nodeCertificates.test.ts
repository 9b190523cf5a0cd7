import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../cloudcore/pki/certificateAuthority.js';
import { DEVICE_CERT_ORG, HUB_PATHS, newKeyAndCsr, NODE_CERT_ORG, parseJoinToken } from '../../protocol/index.js';
import { Fleet, type Cloud } from '../helpers/fleet.js';
import { cloudCaBundle, httpsCall, openNodeLink, tlsApi } from '../helpers/tlsClient.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 21, the cloud's side of node identity against a real cloudcore over real TLS: a join
 * with a CSR gives a client certificate openssl verifies; the link takes the node from that
 * certificate only, and each wrong certificate is refused with its reason in the cloud's log;
 * bad CSRs and garbage change nothing and leave cloudcore up. The server certificate's rotation
 * has a cloudcore of its own and runs beside them.
 */
// Concurrent suites, each with its own cloudcore; the tests of the first stay in order.
describe.concurrent('node certificates and mutual TLS', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let ca: string;
  const joinNode = async (node: string, csr?: string, token?: string) => {
    const t = token ?? await tlsApi(cloud).token(node);
    return httpsCall<{ certificate?: string; caBundle?: string; error?: string; code?: string; field?: string }>(`${cloud.url}${HUB_PATHS.join}`, {
      method: 'POST', ca, body: { node, token: t, ...(csr !== undefined ? { csr } : {}) },
    });
  };
  const newIdentity = async (node: string) => {
    const { keyPem, csrPem } = await newKeyAndCsr(node, NODE_CERT_ORG);
    const joined = await joinNode(node, csrPem);
    expect(joined.status, joined.text).toBe(200);
    return { key: keyPem, cert: joined.body.certificate! };
  };
  const refusals = () => cloud.proc.lines.filter((l) => l.msg === 'edge connect refused').map((l) => String(l.reason));

  beforeAll(async () => {
    cloud = await fleet.startCloud({ tls: true });
    ca = cloudCaBundle(cloud);
  });
  afterAll(() => fleet.cleanup());

  it.sequential('a pinned token carries the hash of the CA bundle the cloud serves', async () => {
    const token = await tlsApi(cloud).token('edge-pin');
    const served = await httpsCall<string>(`${cloud.url}${HUB_PATHS.ca}`, { ca });
    expect(served.status).toBe(200);
    expect(parseJoinToken(token)?.pin).toBe(cloud.caPin);
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(served.text).digest('hex')).toBe(cloud.caPin);
  });

  it.sequential('a join with a CSR answers a certificate that openssl verifies and that names the node; the key never reaches the cloud', async () => {
    const { key, cert } = await newIdentity('edge-1');
    const dir = fleet.tempDir();
    writeFileSync(join(dir, 'ca.pem'), ca);
    writeFileSync(join(dir, 'edge-1.pem'), cert);
    expect(execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'edge-1.pem')], { encoding: 'utf8' })).toContain(': OK');
    expect(execFileSync('openssl', ['x509', '-noout', '-subject', '-in', join(dir, 'edge-1.pem')], { encoding: 'utf8' })).toMatch(/CN ?= ?edge-1/);
    const keyBody = key.split('\n')[1]!;
    for (const file of readdirSync(cloud.dataDir, { recursive: true }) as string[]) {
      const path = join(cloud.dataDir, file);
      if (statSync(path).isFile()) expect(readFileSync(path, 'latin1').includes(keyBody), path).toBe(false);
    }
    expect(cloud.proc.rawLines.join('\n')).not.toContain(keyBody);
  });

  it.sequential('the link takes its node from the certificate; every wrong certificate is refused with its reason logged', async () => {
    const edge1 = await newIdentity('edge-1m');
    const ok = await openNodeLink(cloud, { ca, ...edge1 }, 'edge-1m');
    expect(ok.status).toBe(101);
    ok.ws?.close();

    // No client certificate at all.
    expect((await openNodeLink(cloud, { ca })).status).toBe(401);
    await waitFor('no-certificate reason', () => refusals().find((r) => r.startsWith('no client certificate')));

    // A certificate of another CA (a second cloud's), for the same node name.
    const otherDir = fleet.tempDir();
    const other = await CertificateAuthority.open({ dataDir: otherDir }, pino({ level: 'silent' }));
    const otherKey = await newKeyAndCsr('edge-1m', NODE_CERT_ORG);
    const foreign = await other.signNode('edge-1m', otherKey.csrPem, 3600);
    expect((await openNodeLink(cloud, { ca, cert: foreign.pem, key: otherKey.keyPem })).status).toBe(401);
    await waitFor('foreign-CA reason', () => refusals().find((r) => r.includes('not issued by this cloud\'s CA')));

    // An expired certificate signed by the right CA.
    const cloudCa = await CertificateAuthority.open({ dataDir: cloud.dataDir }, pino({ level: 'silent' }));
    const expiredKey = await newKeyAndCsr('edge-1m', NODE_CERT_ORG);
    const expired = await cloudCa.signNode('edge-1m', expiredKey.csrPem, 60, new Date(Date.now() - 3_600_000));
    expect((await openNodeLink(cloud, { ca, cert: expired.pem, key: expiredKey.keyPem })).status).toBe(401);
    await waitFor('expired reason', () => refusals().find((r) => r.startsWith('client certificate expired')));

    // A well-signed certificate the cloud never recorded (not on the node's allow-list).
    const unknownKey = await newKeyAndCsr('edge-1m', NODE_CERT_ORG);
    const unknown = await cloudCa.signNode('edge-1m', unknownKey.csrPem, 3600);
    expect((await openNodeLink(cloud, { ca, cert: unknown.pem, key: unknownKey.keyPem })).status).toBe(401);
    await waitFor('unlisted reason', () => refusals().find((r) => r.includes(`certificate ${unknown.serial}`) && r.includes('revoked or replaced')));

    // A device certificate is never a node's.
    const deviceKey = await newKeyAndCsr('edge-1m', DEVICE_CERT_ORG);
    const device = await cloudCa.signDevice('edge-1m', deviceKey.csrPem, 3600);
    expect((await openNodeLink(cloud, { ca, cert: device.pem, key: deviceKey.keyPem })).status).toBe(401);
    await waitFor('device-cert reason', () => refusals().find((r) => r.includes('is not a node certificate')));

    // edge-1's certificate presenting as edge-2.
    const asOther = await openNodeLink(cloud, { ca, ...edge1 }, 'edge-2m');
    expect(asOther.status).toBe(403);
    expect((JSON.parse(asOther.body) as { error: string }).error).toContain('belongs to "edge-1m", not "edge-2m"');

    // Revoked: the live link closes at once and a reconnect is refused.
    const live = await openNodeLink(cloud, { ca, ...edge1 }, 'edge-1m');
    expect(live.status).toBe(101);
    const closed = new Promise<number>((resolve) => live.ws!.once('close', (code) => resolve(code)));
    expect((await tlsApi(cloud).call('POST', '/nodes/edge-1m/revoke')).status).toBe(200);
    expect(await closed).toBe(4004);
    expect((await openNodeLink(cloud, { ca, ...edge1 }, 'edge-1m')).status).toBe(401);
  });

  it.sequential('renewal gives a new certificate over mTLS; the link made with the old one stays up', async () => {
    const old = await newIdentity('edge-r');
    const live = await openNodeLink(cloud, { ca, ...old }, 'edge-r');
    expect(live.status).toBe(101);
    let closedCode: number | undefined;
    live.ws!.once('close', (code) => { closedCode = code; });
    const next = await newKeyAndCsr('edge-r', NODE_CERT_ORG);
    const renewed = await httpsCall<{ certificate: string; caBundle: string }>(`${cloud.url}${HUB_PATHS.renew}`, { method: 'POST', ca, ...old, body: { csr: next.csrPem } });
    expect(renewed.status, renewed.text).toBe(200);
    expect(renewed.body.caBundle).toBe(ca);
    const fresh = await openNodeLink(cloud, { ca, cert: renewed.body.certificate, key: next.keyPem }, 'edge-r');
    expect(fresh.status).toBe(101);
    fresh.ws?.close();
    // Without a client certificate, or asking for another node, a renewal is refused.
    expect((await httpsCall(`${cloud.url}${HUB_PATHS.renew}`, { method: 'POST', ca, body: { csr: next.csrPem } })).status).toBe(401);
    const foreignCsr = await newKeyAndCsr('edge-1', NODE_CERT_ORG);
    const forOther = await httpsCall<{ code: string }>(`${cloud.url}${HUB_PATHS.renew}`, { method: 'POST', ca, ...old, body: { csr: foreignCsr.csrPem } });
    expect(forOther.status).toBe(400);
    expect(forOther.body.code).toBe('EF_BAD_CERTIFICATE_REQUEST');
    await new Promise((r) => setTimeout(r, 300));
    // The old link was replaced by the fresh one (one link per node), not closed for its identity.
    expect(closedCode).toBe(4000);
  });

  it.sequential('bad CSRs are refused, naming the problem, and spend no token; garbage at the TLS port leaves cloudcore up', async () => {
    const token = await tlsApi(cloud).token('edge-b');
    const malformed = await joinNode('edge-b', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', token);
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ code: 'EF_BAD_CERTIFICATE_REQUEST', field: 'csr' });
    const otherNode = await newKeyAndCsr('edge-x', NODE_CERT_ORG);
    const named = await joinNode('edge-b', otherNode.csrPem, token);
    expect(named.status).toBe(400);
    expect(named.body.error).toContain('CN=edge-b');
    const huge = await joinNode('edge-b', 'A'.repeat(20_000), token);
    expect([400, 413]).toContain(huge.status);
    expect((await joinNode('edge-b', undefined, token)).body).toMatchObject({ field: 'csr' });
    expect(await tlsApi(cloud).call('GET', '/nodes/edge-b').then((r) => r.status)).toBe(200);
    // Nothing was spent: the token still joins the node.
    const good = await newKeyAndCsr('edge-b', NODE_CERT_ORG);
    expect((await joinNode('edge-b', good.csrPem, token)).status).toBe(200);

    await new Promise<void>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: cloud.port, rejectUnauthorized: false }, () => {
        socket.write(Buffer.from('\x16\x03\x01garbage\x00\xff'.repeat(50), 'latin1'));
        // The server may hold a half-closed connection until its header timeout; we need not wait.
        setTimeout(() => socket.destroy(), 300);
      });
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
    const { Socket } = await import('node:net');
    await new Promise<void>((resolve) => {
      const raw = new Socket();
      raw.connect(cloud.port, '127.0.0.1', () => raw.end(Buffer.alloc(4096, 0x41)));
      raw.on('error', () => resolve());
      raw.on('close', () => resolve());
    });
    expect((await tlsApi(cloud).call('GET', '/nodes')).status).toBe(200);
    expect(cloud.proc.exitCode).toBeUndefined();
  });
});

describe.concurrent('the cloud server certificate rotates without a restart', () => {
  const fleet = new Fleet();
  afterAll(() => fleet.cleanup());

  const serverSerial = (cloud: Cloud, ca: string) => new Promise<string>((resolve, reject) => {
    // Verified against the CA bundle only: a rotated certificate must need nothing new on the client.
    const socket = tlsConnect({ host: '127.0.0.1', port: cloud.port, ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.on('error', reject);
  });

  it('a new server certificate is served at two thirds of its life; links made before stay up', async () => {
    const cloud = await fleet.startCloud({ tls: true, extra: ['--server-cert-lifetime-seconds', '30', '--offline-after-seconds', '120'] });
    const ca = cloudCaBundle(cloud);
    const before = await serverSerial(cloud, ca);
    const { keyPem, csrPem } = await newKeyAndCsr('edge-s', NODE_CERT_ORG);
    const joined = await httpsCall<{ certificate: string }>(`${cloud.url}${HUB_PATHS.join}`, {
      method: 'POST', ca, body: { node: 'edge-s', token: await tlsApi(cloud).token('edge-s'), csr: csrPem },
    });
    const link = await openNodeLink(cloud, { ca, cert: joined.body.certificate, key: keyPem }, 'edge-s');
    expect(link.status).toBe(101);
    let closed = false;
    link.ws!.once('close', () => { closed = true; });
    // At 2/3 of its 30 s life (cloudcore's shortest).
    await cloud.proc.waitForLog('rotated the server certificate', 40_000);
    const after = await serverSerial(cloud, ca);
    expect(after).not.toBe(before);
    expect(closed).toBe(false);
    link.ws!.close();
  }, 60_000);
});
