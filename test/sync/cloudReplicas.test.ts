import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateRenewal } from '../../edgecore/identity/certificateRenewal.js';
import { summarize } from '../../edgecore/identity/identityStanding.js';
import { NodeIdentity } from '../../edgecore/identity/nodeIdentity.js';
import { CloudLink, type LinkState } from '../../edgecore/link/cloudLink.js';
import { EdgeStatusSchema, type EdgeStatus } from '../../protocol/edgeStatus.js';
import { freeLoopbackPort } from '../helpers/etcdCluster.js';
import { api, Fleet, markerApp, runToEnd, type Cloud, type Edge, type LogLine } from '../helpers/fleet.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { cloudCaBundle, httpsCall, tlsApi } from '../helpers/tlsClient.js';
import { waitFor } from '../helpers/wait.js';

/**
 * edgecore given several cloudcore URLs (issue 23: replicas of one fleet). The replicas here are
 * two TCP proxies in front of ONE real cloudcore over HTTPS: same store, same CA, same server
 * certificate, as replicas sharing one etcd are to an edge. Cutting a proxy is a replica that
 * died; a loopback port nobody listens on is a replica that is down; the edge must move among
 * them and resume from its revision (the cloud counts the snapshots it sends).
 */

const fleet = new Fleet();
let cloud: Cloud;
const proxies: Record<'a' | 'b', TcpProxy> = { a: new TcpProxy(0), b: new TcpProxy(0) };
const urls = { a: '', b: '', dead: '' };
let shedder: Server | undefined;

beforeAll(async () => {
  cloud = await fleet.startCloud({ tls: true });
  for (const key of ['a', 'b'] as const) {
    proxies[key].retarget(cloud.port);
    await proxies[key].start();
    // cloudcore's certificate names 127.0.0.1, so TLS through the proxy verifies as direct.
    urls[key] = `https://127.0.0.1:${proxies[key].port}`;
  }
  urls.dead = `https://127.0.0.1:${await freeLoopbackPort()}`;
});
afterAll(async () => {
  await fleet.cleanup();
  await Promise.all([proxies.a.close(), proxies.b.close()]);
  await new Promise<void>((resolve) => (shedder ? shedder.close(() => resolve()) : resolve()));
});

async function status(edge: Edge): Promise<EdgeStatus> {
  return EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json());
}

const linkedVia = (edge: Edge, allowed: string[]) => waitFor(`edge linked via ${allowed.join(' or ')}`, async () => {
  const s = await status(edge);
  return s.link.state === 'connected' && allowed.includes(s.link.cloudUrl) ? s : undefined;
});

/** Full snapshots cloudcore has sent to any edge (its /metrics). */
async function cloudSnapshots(): Promise<number> {
  const scrape = await httpsCall(`${cloud.url}/metrics`, { ca: cloudCaBundle(cloud), headers: { authorization: `Bearer ${cloud.token}` } });
  const line = scrape.text.split('\n').find((l) => l.startsWith('edgefleet_hub_snapshots_total '));
  if (!line) throw new Error('cloudcore /metrics has no edgefleet_hub_snapshots_total');
  return Number(line.split(' ')[1]);
}

/** The link's durable state, in memory: this test is about where the link goes, not what it carries. */
const memoryState: LinkState = {
  epoch: () => 'epoch-replicas-test', lastRevision: () => 0,
  applySync: () => ({ changed: [], removed: [] }), pending: () => [], ackUpTo: () => 0,
};

const proxyOf = (url: string): TcpProxy => (url === urls.a ? proxies.a : proxies.b);
const otherOf = (url: string): string => (url === urls.a ? urls.b : urls.a);

describe('edgecore with several cloudcore replica URLs', () => {
  let edge: Edge;

  it('joins with the first URL dead, links through a live one, and shows the URL it is on and the list', async () => {
    const token = await tlsApi(cloud).token('edge-r');
    edge = await fleet.startEdge({ node: 'edge-r', cloudUrl: `${urls.dead},${urls.a},${urls.b}`, joinToken: token });
    const s = await linkedVia(edge, [urls.a, urls.b]);
    expect(s.link.cloudUrls).toEqual([urls.dead, urls.a, urls.b]);
    expect(s.identity?.mode).toBe('certificate');
    expect(edge.proc.lines.some((l) => l.msg === 'joined the fleet')).toBe(true);
    // The first connect of a new node: the whole desired state, once.
    await waitFor('the first snapshot', async () => (await status(edge)).link.stats?.snapshots === 1);

    // The join went to the listed order's first URL, found it down, and joined at the next.
    expect(edge.proc.lines.some((l) => l.msg === 'cloud replica did not take the join; trying the next' && l.cloudUrl === urls.dead)).toBe(true);
    const local = await runToEnd('edgectl', ['local', 'status', '--url', edge.statusUrl]);
    expect(local.code).toBe(0);
    expect(local.out).toContain(`to ${s.link.cloudUrl} (other replicas: `);
    expect(local.out).toContain(urls.dead);
  });

  it('its replica dies: it moves to another and resumes without a snapshot; an app applied meanwhile arrives', async () => {
    const before = await linkedVia(edge, [urls.a, urls.b]);
    const snapshotsBefore = await cloudSnapshots();
    const on = before.link.cloudUrl;
    proxyOf(on).cut();
    const marker = join(fleet.root, 'meanwhile.marker');
    expect((await tlsApi(cloud).call('POST', '/apps', markerApp('meanwhile', marker))).status).toBe(201);

    const after = await linkedVia(edge, [otherOf(on)]);
    await waitFor('the app applied meanwhile runs', () => fleet.runningWorkload(edge, 'meanwhile'));
    const final = await status(edge);
    expect(final.link.cloudUrl).toBe(otherOf(on));
    expect(final.link.stats?.snapshots).toBe(before.link.stats?.snapshots);
    expect(final.link.stats?.connects).toBe((before.link.stats?.connects ?? 0) + 1);
    expect(after.link.stats?.syncFrames).toBeGreaterThanOrEqual(before.link.stats?.syncFrames ?? 0);
    expect(await cloudSnapshots()).toBe(snapshotsBefore);
    expect(edge.proc.lines.some((l) => l.msg === 'moving the cloud link to the next replica' && l.from === on)).toBe(true);
    proxyOf(on).restore();
  });

  it('restarted with only one live URL (the other down): links through it and resumes from its revision', async () => {
    const snapshotsBefore = await cloudSnapshots();
    await edge.proc.stop();
    proxies.a.cut();
    // listed: the down one first, so the move past it is certain.
    edge = await fleet.startEdge({ node: 'edge-r', cloudUrl: `${urls.a},${urls.b}`, dataDir: edge.dataDir, extra: ['--cloud-url-order', 'listed'] });
    const s = await linkedVia(edge, [urls.b]);
    expect(edge.proc.lines.some((l) => l.msg === 'moving the cloud link to the next replica' && l.from === urls.a)).toBe(true);
    expect(s.link.stats?.snapshots).toBe(0);
    expect(await cloudSnapshots()).toBe(snapshotsBefore);
    expect(await fleet.runningWorkload(edge, 'meanwhile')).toBeDefined();
    proxies.a.restore();
  });

  it('a replica shedding load (503 + Retry-After) sends the edge to the next one at once', async () => {
    // A replica whose admission control is full: every link upgrade is answered 503 with a
    // Retry-After far longer than this test waits, so linking at all shows it was not honoured
    // while another replica could take the edge.
    let shed = 0;
    shedder = createServer((_req, res) => { shed++; res.writeHead(503, { 'retry-after': '120', 'content-type': 'application/json' }).end('{"error":"busy"}'); });
    await new Promise<void>((resolve) => shedder!.listen(0, '127.0.0.1', () => resolve()));
    // Plain HTTP on loopback for both: the shedder has no certificate, and http:// and https:// are not mixed.
    const plain = await fleet.startCloud({ dataDir: fleet.tempDir() });
    const plainProxy = new TcpProxy(plain.port);
    const plainUrl = await plainProxy.start();
    try {
      const shedUrl = `http://127.0.0.1:${(shedder.address() as AddressInfo).port}`;
      const token = await api(plain).token('edge-s');
      const shedEdge = await fleet.startEdge({ node: 'edge-s', cloudUrl: `${plainUrl},${shedUrl}`, joinToken: token, extra: ['--cloud-url-order', 'listed'] });
      await linkedVia(shedEdge, [plainUrl]);
      // Drop the link: with two replicas the next one is the shedder, then the live one again.
      plainProxy.cut();
      plainProxy.restore();
      await waitFor('the shedder refused the edge', () => shed > 0);
      await linkedVia(shedEdge, [plainUrl]);
      expect(shedEdge.proc.lines.some((l) => l.msg === 'cloud replica is shedding load; trying the next one at once')).toBe(true);
    } finally {
      await plainProxy.close();
    }
  });

  it('a certificate renewal goes past a replica that is down to the next one; the reconnect that presents it stays on its replica', async () => {
    const lines: LogLine[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as LogLine); } });
    const identity = new NodeIdentity({ dataDir: fleet.tempDir(), node: 'edge-n', cloudUrls: [urls.a], joinToken: await tlsApi(cloud).token('edge-n'), log });
    await identity.start();
    await identity.withIdentity(async () => undefined);
    const serial = () => (identity.current ? summarize(identity.current).serial : null);
    const joined = serial();
    expect(joined).not.toBeNull();
    const renewal = new CertificateRenewal({ identity, cloudUrls: () => [urls.dead, urls.b], node: 'edge-n', log, onRenewed: () => undefined });
    let link: CloudLink | undefined;
    try {
      await renewal.renew();
      expect(serial()).not.toBe(joined);
      expect(renewal.view()?.lastRenewalError).toBeNull();
      expect(lines.some((l) => l.msg === 'cloud replica did not take the renewal; trying the next' && l.cloudUrl === urls.dead)).toBe(true);

      // The renewed identity links (listed: through a); the reconnect a renewal asks for is not a
      // replica failure, so it stays on a — `listed` would otherwise leave its preferred replica.
      link = new CloudLink({ cloudUrl: [urls.a, urls.b], cloudUrlOrder: 'listed', node: 'edge-n', auth: () => identity.linkAuth(), state: memoryState, agent: { version: '0', os: 'linux', arch: 'x64', hostname: 'h' }, heartbeatMs: 1000, log });
      link.start();
      await waitFor('linked through a', () => link!.phase === 'connected' && link!.cloudUrl === urls.a);
      link.reconnect();
      await waitFor('linked again', () => link!.phase === 'connected' && link!.stats.connects === 2);
      expect(link.cloudUrl).toBe(urls.a);
    } finally {
      await link?.stop();
      await renewal.stop();
      await identity.stop();
    }
  });

  it('a bad URL in the list is named, as are duplicates; edgecore exits 2 before it opens anything', async () => {
    const dataDir = fleet.tempDir();
    const bad = await runToEnd('edgecore', ['--node', 'edge-x', '--data-dir', dataDir, '--cloud-url', `${urls.a},ftp://cloud.example`]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('invalid setting "cloudUrl" (from flag --cloud-url): "ftp://cloud.example" must be an http(s) URL');
    const twice = await runToEnd('edgecore', ['--node', 'edge-x', '--data-dir', dataDir], { EF_EDGE_CLOUD_URL: `${urls.a},${urls.b},${urls.a}/` });
    expect(twice.code).toBe(2);
    expect(twice.err).toContain(`(from env EF_EDGE_CLOUD_URL): "${urls.a}/" is given twice`);
    const plainOff = await runToEnd('edgecore', ['--node', 'edge-x', '--data-dir', dataDir, '--cloud-url', 'http://127.0.0.1:1,http://cloud.example:8080']);
    expect(plainOff.code).toBe(2);
    expect(plainOff.err).toContain('http://cloud.example:8080 is plain HTTP to a host that is not loopback');
  });
});
