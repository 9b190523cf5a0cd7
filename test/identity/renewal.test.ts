import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CertificateRenewal } from '../../edgecore/identity/certificateRenewal.js';
import { loadIdentity } from '../../edgecore/identity/identityStore.js';
import { summarize } from '../../edgecore/identity/identityStanding.js';
import { NodeIdentity } from '../../edgecore/identity/nodeIdentity.js';
import { CloudLink, type LinkState } from '../../edgecore/link/cloudLink.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { TlsStubCloud } from './tlsStubCloud.js';

/**
 * Renewal while running, over real mutual TLS: a new key each time, the old identity kept until
 * the new one is committed, the link reconnecting once per renewal with the new certificate;
 * a failed renewal retried with back-off; an expired certificate renewed within the cloud's
 * grace window, and past it the "needs a new join token" standing.
 */

const log = pino({ level: 'silent' });
const dirs: string[] = [];
const clouds: TlsStubCloud[] = [];
const stops: Array<() => Promise<void>> = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'ef-renewal-')); dirs.push(d); return d; };

afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop(); });
afterAll(async () => {
  for (const c of clouds) await c.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const memoryState: LinkState = {
  epoch: () => 'e1', lastRevision: () => 0,
  applySync: () => ({ changed: [], removed: [] }),
  pending: () => [], ackUpTo: () => 0,
};

async function startCloud(lifetimeSeconds: number, graceSeconds = 0): Promise<TlsStubCloud> {
  const cloud = await TlsStubCloud.start({ lifetimeSeconds, graceSeconds });
  clouds.push(cloud);
  return cloud;
}

async function joinedIdentity(cloud: TlsStubCloud, dataDir = tempDir()): Promise<NodeIdentity> {
  const identity = new NodeIdentity({ dataDir, node: 'edge-1', cloudUrl: cloud.url, joinToken: cloud.token, log });
  await identity.start();
  await identity.withIdentity(async () => undefined);
  stops.push(() => identity.stop());
  if (!identity.current) throw new Error(`join failed: ${identity.joinError}`);
  return identity;
}

function serialOf(identity: NodeIdentity): string {
  return summarize(identity.current!).serial!;
}

describe('certificate renewal', () => {
  it('renews at 2/3 of the life with a new key; the link reconnects once per renewal and presents the new certificate', async () => {
    const cloud = await startCloud(6);
    const dataDir = tempDir();
    const identity = await joinedIdentity(cloud, dataDir);
    const link = new CloudLink({
      cloudUrl: cloud.url, node: 'edge-1', auth: () => identity.linkAuth(), state: memoryState,
      agent: { version: 't', os: 'linux', arch: 'x64', hostname: 'h' }, heartbeatMs: 1000,
    });
    link.start();
    stops.push(() => link.stop());
    let renewed = 0;
    const renewal = new CertificateRenewal({ identity, cloudUrl: cloud.url, node: 'edge-1', log, onRenewed: () => { renewed++; link.reconnect(); } });
    await renewal.start();
    stops.push(() => renewal.stop());

    const serials = [serialOf(identity)];
    const keys = [identity.current!.mode === 'certificate' ? identity.current!.keyPem : ''];
    await waitFor('the link up with the first certificate', () => cloud.links.length === 1);
    expect(cloud.links[0]).toEqual({ commonName: 'edge-1', serial: serials[0] });
    expect(renewal.view()?.standing).toBe('valid');

    for (let round = 1; round <= 2; round++) {
      await waitFor(`renewal ${round}`, () => renewed === round, 15_000);
      serials.push(serialOf(identity));
      keys.push(identity.current!.mode === 'certificate' ? identity.current!.keyPem : '');
      await waitFor(`the link back with certificate ${round + 1}`, () => cloud.links.length === round + 1, 10_000);
      expect(cloud.links[round]).toEqual({ commonName: 'edge-1', serial: serials[round] });
    }
    expect(new Set(serials).size).toBe(3);
    expect(new Set(keys).size).toBe(3);
    // Each renewal was made with the certificate it replaced (mutual TLS), in order.
    const renewals = cloud.requests.filter((r) => r.path === '/hub/v1/renew');
    expect(renewals.slice(0, 2).map((r) => r.peerSerial)).toEqual(serials.slice(0, 2));
    // What is committed is what is in use; the link came up once per certificate.
    const stored = loadIdentity(dataDir);
    expect(stored?.mode === 'certificate' && stored.certPem).toBe(identity.current?.mode === 'certificate' && identity.current.certPem);
    expect(link.stats.connects).toBe(3);
    expect(link.phase).toBe('connected');
  }, 40_000);

  it('a failed renewal keeps the old identity, is shown, and is retried with back-off until it succeeds', async () => {
    const cloud = await startCloud(3600);
    const identity = await joinedIdentity(cloud);
    const before = serialOf(identity);
    cloud.renewFailure = { status: 503, code: 'EF_UNAVAILABLE', error: 'cloud is busy' };
    const renewal = new CertificateRenewal({ identity, cloudUrl: cloud.url, node: 'edge-1', log, onRenewed: () => undefined, backoff: { baseMs: 200, maxMs: 400 } });
    await renewal.start();
    stops.push(() => renewal.stop());
    void renewal.renew();
    await waitFor('renewal error shown', () => renewal.view()?.lastRenewalError?.includes('cloud is busy'));
    await waitFor('retried', () => cloud.requests.filter((r) => r.path === '/hub/v1/renew').length >= 2, 5_000);
    expect(serialOf(identity)).toBe(before);
    expect(renewal.view()?.standing).toBe('valid');
    cloud.renewFailure = null;
    await waitFor('renewed after the cloud is back', () => serialOf(identity) !== before, 5_000);
    expect(renewal.view()?.lastRenewalError).toBeNull();
  });
});

describe('offline past expiry', () => {
  it('an expired certificate renews within the cloud\'s grace window', async () => {
    const cloud = await startCloud(2, 3600);
    const identity = await joinedIdentity(cloud);
    const before = serialOf(identity);
    await sleep(2_600);
    // The edge "restarts" after expiry: the renewal part finds the identity expired and renews at once.
    const renewal = new CertificateRenewal({ identity, cloudUrl: cloud.url, node: 'edge-1', log, onRenewed: () => undefined });
    expect(renewal.view()?.standing).toBe('expired-in-grace');
    cloud.lifetimeSeconds = 3600;
    await renewal.start();
    stops.push(() => renewal.stop());
    await waitFor('renewed', () => serialOf(identity) !== before, 10_000);
    expect(renewal.view()?.standing).toBe('valid');
  });

  it('past the grace window: "needs a new join token", not retried, shown; a new token brings the node back', async () => {
    const cloud = await startCloud(2, 0);
    const dataDir = tempDir();
    const identity = await joinedIdentity(cloud, dataDir);
    const before = serialOf(identity);
    await sleep(2_600);
    const renewal = new CertificateRenewal({ identity, cloudUrl: cloud.url, node: 'edge-1', log, onRenewed: () => undefined });
    await renewal.start();
    stops.push(() => renewal.stop());
    await waitFor('needs a new token', () => renewal.view()?.standing === 'needs-new-token', 10_000);
    expect(renewal.view()?.lastRenewalError).toMatch(/grace window/);
    const attempts = cloud.requests.filter((r) => r.path === '/hub/v1/renew').length;
    renewal.onLinkDown();
    await sleep(300);
    expect(cloud.requests.filter((r) => r.path === '/hub/v1/renew').length).toBe(attempts);
    expect(serialOf(identity)).toBe(before);

    // edgecore restarted with a new token: it joins again and replaces the identity.
    cloud.tokenSecret = 'abcdef0123';
    cloud.lifetimeSeconds = 3600;
    const again = await joinedIdentity(cloud, dataDir);
    expect(serialOf(again)).not.toBe(before);
    const renewal2 = new CertificateRenewal({ identity: again, cloudUrl: cloud.url, node: 'edge-1', log, onRenewed: () => undefined });
    expect(renewal2.view()?.standing).toBe('valid');
  });
});
