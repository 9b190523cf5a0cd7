import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { CertificateRenewal } from '../../edgecore/identity/certificateRenewal.js';
import { loadIdentity } from '../../edgecore/identity/identityStore.js';
import { summarize } from '../../edgecore/identity/identityStanding.js';
import { NodeIdentity } from '../../edgecore/identity/nodeIdentity.js';
import { CloudLink, type LinkState } from '../../edgecore/link/cloudLink.js';
import { Fleet, type Cloud, type LogLine } from '../helpers/fleet.js';
import { tlsApi } from '../helpers/tlsClient.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * Renewal while running, over real mutual TLS with the real cloudcore (30-second certificates,
 * its minimum): a new key each time, the old identity kept until the new one is committed, the
 * link reconnecting once per renewal; a renewal failing while cloudcore is down, retried with
 * back-off until it is back; an expired certificate renewed within the cloud's grace window, and
 * past it (the operator shortened the window) the "needs a new join token" standing.
 * The two suites use their own cloudcores and run at the same time (each one's tests in order):
 * the expiring identities run out while the renewals happen.
 */

const LIFETIME = ['--node-cert-lifetime-seconds', '30'];
const fleet = new Fleet();
const dirs: string[] = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'ef-renewal-')); dirs.push(d); return d; };

/** The edge classes' log, kept to count renewal attempts (the cloud cannot log a connect that never reached it). */
const edgeLog: LogLine[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => { edgeLog.push(JSON.parse(line) as LogLine); } });

/** Signs and renews 30 s certificates; the first test renews on it, the second stops and restarts it. */
let rotating: Cloud;
/** 30 s certificates, a one-hour grace window: the identities below expire while the other tests run. */
let expiring: Cloud;
let inGrace: { identity: NodeIdentity; dataDir: string };
let pastGrace: { identity: NodeIdentity; dataDir: string };

beforeAll(async () => {
  rotating = await fleet.startCloud({ tls: true, dataDir: join(fleet.root, 'rotating'), extra: LIFETIME });
  expiring = await fleet.startCloud({ tls: true, dataDir: join(fleet.root, 'expiring'), extra: [...LIFETIME, '--node-cert-grace-seconds', '3600'] });
  for (const node of ['edge-g', 'edge-x']) {
    const dataDir = tempDir();
    const identity = await joinedIdentity(expiring, node, dataDir);
    if (node === 'edge-g') inGrace = { identity, dataDir }; else pastGrace = { identity, dataDir };
  }
});
afterAll(async () => {
  await inGrace?.identity.stop();
  await pastGrace?.identity.stop();
  await fleet.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const memoryState: LinkState = {
  epoch: () => 'epoch-renewal-test', lastRevision: () => 0,
  applySync: () => ({ changed: [], removed: [] }),
  pending: () => [], ackUpTo: () => 0,
};

/**
 * What a test started, stopped last first when that test ends. Per test, not a file-wide
 * afterEach: with the suites running at the same time, one test's end must not stop another's parts.
 */
function stopsAtEnd({ onTestFinished }: TestContext): Array<() => Promise<void>> {
  const stops: Array<() => Promise<void>> = [];
  onTestFinished(async () => { for (const stop of stops.splice(0).reverse()) await stop(); });
  return stops;
}

/** A joined identity; stopped at the end of the test when given that test's `stops` (else by afterAll). */
async function joinedIdentity(cloud: Cloud, node: string, dataDir = tempDir(), stops?: Array<() => Promise<void>>): Promise<NodeIdentity> {
  const identity = new NodeIdentity({ dataDir, node, cloudUrls: [cloud.url], joinToken: await tlsApi(cloud).token(node), log });
  await identity.start();
  await identity.withIdentity(async () => undefined);
  stops?.push(() => identity.stop());
  if (!identity.current) throw new Error(`join failed: ${identity.joinError}`);
  return identity;
}

function serialOf(identity: NodeIdentity): string {
  return summarize(identity.current!).serial!;
}

function notAfterOf(identity: NodeIdentity): number {
  return summarize(identity.current!).validity!.notAfter.getTime();
}

/** The link connected for the `connects`-th time; otherwise why not (waitFor reports the last reason). */
function linkUp(link: CloudLink, connects: number): true {
  if (link.phase === 'connected' && link.stats.connects === connects) return true;
  throw new Error(`link ${link.phase}, ${link.stats.connects} connects, last error: ${link.lastError}`);
}

/** cloudcore's log lines `msg` about `node`. */
const cloudSaid = (cloud: Cloud, msg: string, node: string) => cloud.proc.lines.filter((l) => l.msg === msg && l.node === node);

describe.concurrent('certificate renewal', () => {
  it.sequential('renews at 2/3 of the life with a new key; the link reconnects once per renewal, the old link ending at the cloud', async (context) => {
    const stops = stopsAtEnd(context);
    const dataDir = tempDir();
    const identity = await joinedIdentity(rotating, 'edge-1', dataDir, stops);
    const link = new CloudLink({
      cloudUrl: rotating.url, node: 'edge-1', auth: () => identity.linkAuth(), state: memoryState,
      agent: { version: 't', os: 'linux', arch: 'x64', hostname: 'h' }, heartbeatMs: 1000,
    });
    link.start();
    stops.push(() => link.stop());
    let renewed = 0;
    const renewal = new CertificateRenewal({ identity, cloudUrls: () => [rotating.url], node: 'edge-1', log, onRenewed: () => { renewed++; link.reconnect(); } });
    await renewal.start();
    stops.push(() => renewal.stop());

    const serials = [serialOf(identity)];
    const keys = [identity.current!.mode === 'certificate' ? identity.current!.keyPem : ''];
    await waitFor('the link up with the first certificate', () => linkUp(link, 1));
    expect(cloudSaid(rotating, 'node joined', 'edge-1').map((l) => l.serial)).toEqual([serials[0]]);
    expect(renewal.view()?.standing).toBe('valid');

    for (let round = 1; round <= 2; round++) {
      // 2/3 of 30 s after the previous certificate was issued.
      await waitFor(`renewal ${round}`, () => renewed === round, 30_000, 250);
      serials.push(serialOf(identity));
      keys.push(identity.current!.mode === 'certificate' ? identity.current!.keyPem : '');
      await waitFor(`the link back with certificate ${round + 1}`, () => linkUp(link, round + 1), 10_000);
      // The cloud signed exactly this certificate with an unexpired one (mutual TLS), and saw the old link end once.
      const renewals = await waitFor(`cloudcore logged renewal ${round}`, () => { const l = cloudSaid(rotating, 'renewed a node certificate', 'edge-1'); return l.length === round ? l : undefined; }, 10_000);
      expect(renewals[round - 1]).toMatchObject({ serial: serials[round], renewedExpired: false });
      await waitFor(`cloudcore saw link ${round} end`, () => cloudSaid(rotating, 'edge disconnected', 'edge-1').length === round, 10_000);
    }
    expect(new Set(serials).size).toBe(3);
    expect(new Set(keys).size).toBe(3);
    // What is committed is what is in use; the link came up once per certificate, and the cloud ended one link per renewal.
    const stored = loadIdentity(dataDir);
    expect(stored?.mode === 'certificate' && stored.certPem).toBe(identity.current?.mode === 'certificate' && identity.current.certPem);
    expect(link.stats.connects).toBe(3);
    expect(link.phase).toBe('connected');
    expect(cloudSaid(rotating, 'edge disconnected', 'edge-1')).toHaveLength(2);
    expect(cloudSaid(rotating, 'edge connect refused', 'edge-1')).toEqual([]);
  }, 120_000);

  it.sequential('a renewal while cloudcore is down keeps the old identity, is shown, and is retried with back-off until cloudcore is back', async (context) => {
    const stops = stopsAtEnd(context);
    const identity = await joinedIdentity(rotating, 'edge-2', undefined, stops);
    const before = serialOf(identity);
    // Its own log binding: the retries counted below are this renewal's, whatever the other suite logs meanwhile.
    const retrying = () => edgeLog.filter((l) => l.msg === 'node identity renewal failed; retrying' && l.renewal === 'edge-2');
    const renewal = new CertificateRenewal({
      identity, cloudUrls: () => [rotating.url], node: 'edge-2', log: log.child({ renewal: 'edge-2' }), onRenewed: () => undefined, backoff: { baseMs: 200, maxMs: 400 },
    });
    await renewal.start();
    stops.push(() => renewal.stop());
    await rotating.proc.stop();
    const failedBefore = retrying().length;
    void renewal.renew();
    await waitFor('renewal error shown', () => renewal.view()?.lastRenewalError);
    expect(renewal.view()?.lastRenewalError).toContain(rotating.url);
    await waitFor('retried with back-off', () => retrying().length - failedBefore >= 3, 5_000);
    const delays = retrying().slice(failedBefore).map((l) => Number(l.retryInMs));
    expect(delays.every((d) => d > 0 && d <= 400)).toBe(true);
    expect(serialOf(identity)).toBe(before);
    expect(renewal.view()?.standing).toBe('valid');

    // The same cloudcore again: its port and data dir (CA, store).
    rotating = await fleet.startCloud({ tls: true, dataDir: rotating.dataDir, port: rotating.port, extra: LIFETIME });
    await waitFor('renewed after cloudcore is back', () => serialOf(identity) !== before, 10_000);
    expect(renewal.view()?.lastRenewalError).toBeNull();
    const renewedLine = await waitFor('cloudcore logged it', () => cloudSaid(rotating, 'renewed a node certificate', 'edge-2')[0], 10_000);
    expect(renewedLine.serial).toBe(serialOf(identity));
  }, 60_000);
});

describe.concurrent('offline past expiry', () => {
  it.sequential('an expired certificate renews within the cloud\'s grace window', async (context) => {
    const stops = stopsAtEnd(context);
    const { identity } = inGrace;
    const before = serialOf(identity);
    await sleep(Math.max(0, notAfterOf(identity) - Date.now()) + 1_500);
    // The edge "restarts" after expiry: the renewal part finds the identity expired and renews at once.
    const renewal = new CertificateRenewal({ identity, cloudUrls: () => [expiring.url], node: 'edge-g', log, onRenewed: () => undefined });
    expect(renewal.view()?.standing).toBe('expired-in-grace');
    await renewal.start();
    stops.push(() => renewal.stop());
    await waitFor('renewed', () => serialOf(identity) !== before, 10_000);
    expect(renewal.view()?.standing).toBe('valid');
    const renewedLine = await waitFor('cloudcore logged it', () => cloudSaid(expiring, 'renewed a node certificate', 'edge-g')[0], 10_000);
    expect(renewedLine).toMatchObject({ serial: serialOf(identity), renewedExpired: true });
  }, 80_000);

  it.sequential('past the grace window: "needs a new join token", not retried, shown; a new token brings the node back', async (context) => {
    const stops = stopsAtEnd(context);
    const { identity, dataDir } = pastGrace;
    const before = serialOf(identity);
    await sleep(Math.max(0, notAfterOf(identity) - Date.now()) + 1_500);
    // The operator restarts cloudcore with no grace window: the expired certificate is now past it.
    await expiring.proc.stop();
    expiring = await fleet.startCloud({ tls: true, dataDir: expiring.dataDir, port: expiring.port, extra: [...LIFETIME, '--node-cert-grace-seconds', '0'] });
    const renewal = new CertificateRenewal({ identity, cloudUrls: () => [expiring.url], node: 'edge-x', log, onRenewed: () => undefined });
    await renewal.start();
    stops.push(() => renewal.stop());
    await waitFor('needs a new token', () => renewal.view()?.standing === 'needs-new-token', 10_000);
    expect(renewal.view()?.lastRenewalError).toMatch(/grace window/);
    const refused = await waitFor('cloudcore refused it', () => { const l = cloudSaid(expiring, 'renewal refused', 'edge-x'); return l.length > 0 ? l : undefined; }, 10_000);
    expect(refused).toHaveLength(1);
    expect(String(refused[0]!.reason)).toMatch(/past the 0 s grace window/);
    // Not retried, not even when the link goes down.
    renewal.onLinkDown();
    await sleep(1_000);
    expect(cloudSaid(expiring, 'renewal refused', 'edge-x')).toHaveLength(1);
    expect(serialOf(identity)).toBe(before);

    // edgecore restarted with a new token: it joins again and replaces the identity.
    const again = await joinedIdentity(expiring, 'edge-x', dataDir, stops);
    expect(serialOf(again)).not.toBe(before);
    const renewal2 = new CertificateRenewal({ identity: again, cloudUrls: () => [expiring.url], node: 'edge-x', log, onRenewed: () => undefined });
    expect(renewal2.view()?.standing).toBe('valid');
  }, 80_000);
});
