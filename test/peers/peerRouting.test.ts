import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeApp, makeNode, makeWorkload } from '../store/fixtures.js';
import { freeLoopbackPort } from '../helpers/etcdCluster.js';
import { httpsCall } from '../helpers/tlsClient.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { openSqliteStore, type SqliteStore } from '../../cloudcore/store/sqliteStore.js';
import type { CertificateAuthority } from '../../cloudcore/pki/certificateAuthority.js';
import { PeerClient } from '../../cloudcore/peers/peerClient.js';
import { peerPlugin } from '../../cloudcore/peers/peerPlugin.js';
import { RoutedTunnel } from '../../cloudcore/peers/routedTunnel.js';
import {
  LocalLinks, makeCa, MemoryAudit, randomToken, removeTempDirs, silentLog, startReplica, stopReplica, tempDir, type Replica, type ScriptedEdge,
} from './peerRig.js';

/**
 * logs and exec asked at replica B for a node whose link replica A holds: two real HTTPS servers
 * on loopback (certificates from a real cloud CA), each with the operator API and the peer
 * plugin, one shared object store; A's link is answered by a scripted edge.
 */
describe('per-node work routed to the replica that holds the node', () => {
  const replicaToken = randomToken();
  const operatorToken = randomToken();
  const owners = new Map<string, string>();
  const urls = new Map<string, string>();
  const auditB = new MemoryAudit();
  let ca: CertificateAuthority;
  let store: SqliteStore;
  let a: Replica;
  let b: Replica;
  let rogue: Replica;
  let edgeA: ScriptedEdge;
  const started: Replica[] = [];

  beforeAll(async () => {
    ca = await makeCa();
    store = await openSqliteStore({ path: join(tempDir('ef-peer-store-'), 'store.db') });
    const app = makeApp('web');
    for (const node of ['edge-a', 'edge-b', 'edge-gone', 'edge-unregistered', 'edge-rogue', 'edge-plain']) {
      await store.create(makeNode(node));
      await store.create(makeWorkload(app, node));
    }
    const common = { store, replicaToken, operatorToken, owners, urls };
    a = await startReplica({ ...common, id: 'r-a', ca, trust: ca });
    b = await startReplica({ ...common, id: 'r-b', ca, trust: ca, audit: auditB });
    // A replica whose certificate another CA signed: it must not be believed to be a replica.
    const otherCa = await makeCa();
    rogue = await startReplica({ ...common, id: 'r-rogue', ca: otherCa, trust: otherCa });
    started.push(a, b, rogue);
    edgeA = a.links.connect('edge-a');
    owners.set('edge-a', 'r-a');
    rogue.links.connect('edge-rogue');
    owners.set('edge-rogue', 'r-rogue');
    owners.set('edge-gone', 'r-gone');
    urls.set('r-gone', `https://127.0.0.1:${await freeLoopbackPort()}`);
    owners.set('edge-unregistered', 'r-unregistered');
    owners.set('edge-plain', 'r-plain');
    urls.set('r-plain', a.url.replace('https:', 'http:'));
  });
  afterAll(async () => {
    for (const replica of started) await stopReplica(replica);
    await store?.close();
    removeTempDirs();
  });

  const atB = <T = unknown>(method: string, path: string, body?: unknown) =>
    httpsCall<T>(`${b.url}/api/v1${path}`, { method, body, ca: ca.bundlePem, headers: { authorization: `Bearer ${operatorToken}` } });

  function openStream(url: string, token: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(url, { ca: ca.bundlePem, headers: { authorization: `Bearer ${token}` }, agent: false }, resolve);
      req.on('error', reject);
      req.end();
    });
  }

  it('serves a log tail through the replica holding the node, under the asking replica\'s request id', async () => {
    const answer = await atB('GET', '/nodes/edge-a/workloads/web/logs?tail=3');
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('web line-1\nweb line-2\nweb line-3\n');
    const asked = edgeA.frames.filter((f) => f.type === 'logsRequest').at(-1);
    expect(asked).toMatchObject({ workload: 'web', tail: 3, follow: false });
    const audited = auditB.records.filter((r) => r.route?.endsWith('/logs')).at(-1);
    expect(audited?.requestId).toBeDefined();
    expect(asked?.id).toBe(audited?.requestId);
  });

  it('follows a log through the peer, and the operator\'s cancel ends the stream at the edge', async () => {
    const res = await openStream(`${b.url}/api/v1/nodes/edge-a/workloads/web/logs?tail=1&follow=true`, operatorToken);
    expect(res.statusCode).toBe(200);
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => { text += chunk; });
    await waitFor('live lines through the peer', () => text.includes('live-3\n'));
    expect(text.startsWith('web line-1\nlive-1\nlive-2\n')).toBe(true);
    const asked = edgeA.frames.filter((f) => f.type === 'logsRequest').at(-1)!;
    expect(edgeA.liveStreams).toBe(1);
    res.destroy();
    await waitFor('the edge told to stop', () => edgeA.frames.some((f) => f.type === 'streamCancel' && f.id === asked.id));
    expect(edgeA.liveStreams).toBe(0);
  });

  it('ends a followed log at B with the reason when the node\'s link at A drops', async () => {
    const edge = a.links.connect('edge-b');
    owners.set('edge-b', 'r-a');
    try {
      const res = await openStream(`${b.url}/api/v1/nodes/edge-b/workloads/web/logs?tail=0&follow=true`, operatorToken);
      expect(res.statusCode).toBe(200);
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      const ended = new Promise<void>((resolve) => res.on('end', () => resolve()));
      await waitFor('live lines', () => text.includes('live-1\n'));
      edge.disconnect();
      await ended;
      expect(text).toMatch(/\n\[edgefleet: the link went away\]\n$/);
    } finally {
      a.links.edges.delete('edge-b');
      owners.delete('edge-b');
    }
  });

  it('keeps a quiet followed log open on heartbeats, and ends one whose replica went silent', async () => {
    const quietReplica = await startReplica({ store, replicaToken, operatorToken, owners, urls, id: 'r-quiet', ca, trust: ca, heartbeatMs: 50 });
    started.push(quietReplica);
    const quietEdge = quietReplica.links.connect('edge-b', { quiet: true });
    const client = new PeerClient({ replicaToken, trust: { caPem: ca.bundlePem }, streamIdleMs: 400 });
    // A "replica" that answers 200 and then never writes again, as one whose host died would.
    const issued = await ca.issueServer(['127.0.0.1'], 3600);
    const mute = createHttpsServer({ cert: issued.pem, key: issued.keyPem }, (_req, res) => { res.writeHead(200); res.flushHeaders(); });
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    try {
      const quietEnds: (string | undefined)[] = [];
      const cancel = await client.logs({ id: 'r-quiet', url: quietReplica.url }, 'edge-b', 'web', { tail: 0, follow: true }, { lines: () => {}, end: (e) => { quietEnds.push(e); } });
      const muteEnds: (string | undefined)[] = [];
      await client.logs({ id: 'r-mute', url: `https://127.0.0.1:${(mute.address() as AddressInfo).port}` }, 'edge-b', 'web', { tail: 0, follow: true }, { lines: () => {}, end: (e) => { muteEnds.push(e); } });
      await waitFor('the silent replica\'s stream ended', () => muteEnds.length > 0);
      expect(muteEnds).toEqual(['replica "r-mute" went silent for 400 ms (no heartbeat): its host may be gone']);
      // Several idle windows later the quiet log is still open, on heartbeats alone.
      await sleep(1200);
      expect(quietEnds).toEqual([]);
      expect(quietEdge.liveStreams).toBe(1);
      cancel();
      await waitFor('the quiet stream cancelled at the edge', () => quietEdge.liveStreams === 0);
    } finally {
      client.close();
      mute.closeAllConnections();
      await new Promise<void>((resolve) => mute.close(() => resolve()));
    }
  });

  it('ends a followed log at B when the holding replica drops the connection', async () => {
    const closing = await startReplica({ store, replicaToken, operatorToken, owners, urls, id: 'r-closing', ca, trust: ca });
    started.push(closing);
    const edge = closing.links.connect('edge-b');
    owners.set('edge-b', 'r-closing');
    try {
      const res = await openStream(`${b.url}/api/v1/nodes/edge-b/workloads/web/logs?tail=0&follow=true`, operatorToken);
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      const ended = new Promise<void>((resolve) => res.on('end', () => resolve()));
      await waitFor('live lines', () => text.includes('live-1\n'));
      closing.app.server.closeAllConnections();
      await ended;
      expect(text).toMatch(/\n\[edgefleet: replica "r-closing" closed the log stream\]\n$/);
      // Its own side of the stream ended with the connection: the edge was told to stop.
      await waitFor('the edge told to stop', () => edge.liveStreams === 0);
    } finally {
      owners.delete('edge-b');
    }
  });

  it('runs exec through the peer with the asking replica\'s request id', async () => {
    const answer = await atB('POST', '/nodes/edge-a/workloads/web/exec', { command: ['cat', '/etc/hostname'], timeoutSeconds: 5 });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ exitCode: 0, stdout: 'cat /etc/hostname\n', stderr: '', timedOut: false });
    const asked = edgeA.frames.filter((f) => f.type === 'execRequest').at(-1);
    expect(asked).toMatchObject({ workload: 'web', command: ['cat', '/etc/hostname'], timeoutSeconds: 5 });
    expect(asked?.id).toBe(auditB.records.filter((r) => r.route?.endsWith('/exec')).at(-1)?.requestId);
  });

  it('answers 503 naming the node when no replica holds it, and when the registry names a replica that does not', async () => {
    const nobody = await atB<{ error: string }>('GET', '/nodes/edge-b/workloads/web/logs?tail=1');
    expect(nobody.status).toBe(503);
    expect(nobody.body.error).toContain('node "edge-b" is not connected');
    // A stale registry entry: A is asked and answers from its own links only, so no loop.
    owners.set('edge-b', 'r-a');
    try {
      for (const answer of [
        await atB<{ error: string }>('GET', '/nodes/edge-b/workloads/web/logs?tail=1'),
        await atB<{ error: string }>('POST', '/nodes/edge-b/workloads/web/exec', { command: ['true'] }),
      ]) {
        expect(answer.status).toBe(503);
        expect(answer.body.error).toBe('node "edge-b" is not connected to replica "r-a"');
      }
    } finally {
      owners.delete('edge-b');
    }
    const unregistered = await atB<{ error: string }>('POST', '/nodes/edge-unregistered/workloads/web/exec', { command: ['true'] });
    expect(unregistered.status).toBe(503);
    expect(unregistered.body.error).toContain('replica "r-unregistered", which is not registered');
  });

  it('answers 502 naming the replica when the holder is down or speaks plain HTTP', async () => {
    const logs = await atB<{ error: string }>('GET', '/nodes/edge-gone/workloads/web/logs?tail=1');
    expect(logs.status).toBe(502);
    expect(logs.body.error).toMatch(/^replica "r-gone" at https:\/\/127\.0\.0\.1:\d+ is unreachable: ECONNREFUSED/);
    const exec = await atB<{ error: string }>('POST', '/nodes/edge-gone/workloads/web/exec', { command: ['true'] });
    expect(exec.status).toBe(502);
    expect(exec.body.error).toContain('replica "r-gone"');
    const plain = await atB<{ error: string }>('POST', '/nodes/edge-plain/workloads/web/exec', { command: ['true'] });
    expect(plain.status).toBe(502);
    expect(plain.body.error).toContain('replicas talk HTTPS');
  });

  it('refuses a peer whose certificate another CA signed, before sending it anything', async () => {
    for (const answer of [
      await atB<{ error: string }>('GET', '/nodes/edge-rogue/workloads/web/logs?tail=1'),
      await atB<{ error: string }>('POST', '/nodes/edge-rogue/workloads/web/exec', { command: ['cat', '/etc/shadow'] }),
    ]) {
      expect(answer.status).toBe(502);
      expect(answer.body.error).toMatch(/^replica "r-rogue" at https:\/\/127\.0\.0\.1:\d+ is unreachable: .*(certificate|self.signed)/i);
    }
    expect(rogue.links.edges.get('edge-rogue')!.frames).toEqual([]);
  });

  it('refuses peer calls without the replica token (401), and the asking side says so', async () => {
    const url = `${a.url}/peer/v1/nodes/edge-a/workloads/web/exec`;
    const body = { command: ['true'], timeoutSeconds: 5 };
    const noToken = await httpsCall<{ error: string }>(url, { method: 'POST', body, ca: ca.bundlePem });
    expect(noToken.status).toBe(401);
    const operator = await httpsCall(url, { method: 'POST', body, ca: ca.bundlePem, headers: { authorization: `Bearer ${operatorToken}` } });
    expect(operator.status).toBe(401);
    const before = edgeA.frames.length;
    const wrong = new PeerClient({ replicaToken: randomToken(), trust: { caPem: ca.bundlePem } });
    try {
      await expect(wrong.exec({ id: 'r-a', url: a.url }, 'edge-a', 'web', ['true'], 5)).rejects.toMatchObject({
        statusCode: 502, message: 'replica "r-a" refused this replica\'s token (is the cluster replica token the same on both?)',
      });
    } finally {
      wrong.close();
    }
    expect(edgeA.frames.length).toBe(before);
    const badId = await httpsCall<{ error: string }>(url, { method: 'POST', body, ca: ca.bundlePem, headers: { authorization: `Bearer ${replicaToken}`, 'x-edgefleet-request-id': 'not an id' } });
    expect(badId.status).toBe(400);
    expect(badId.body.error).toContain('x-edgefleet-request-id');
    // The replica token is no operator token: it opens the peer routes and nothing else.
    expect((await httpsCall(`${a.url}/api/v1/nodes`, { ca: ca.bundlePem, headers: { authorization: `Bearer ${replicaToken}` } })).status).toBe(401);
  });

  it('talks plain HTTP between replicas only when cloudcore runs --insecure-plain-http', async () => {
    const plainApp = Fastify();
    const links = new LocalLinks();
    links.connect('edge-a');
    await plainApp.register(peerPlugin, { replicaToken, selfId: 'r-plain', local: links });
    await plainApp.listen({ host: '127.0.0.1', port: 0 });
    const plainUrl = `http://127.0.0.1:${(plainApp.server.address() as AddressInfo).port}`;
    const plain = new PeerClient({ replicaToken, trust: { plainHttp: true } });
    try {
      expect(await plain.exec({ id: 'r-plain', url: plainUrl }, 'edge-a', 'web', ['hostname'], 5)).toMatchObject({ exitCode: 0, stdout: 'hostname\n' });
      // A plain-HTTP replica does not send the token to an HTTPS URL, nor an HTTPS one to plain HTTP.
      await expect(plain.exec({ id: 'r-a', url: a.url }, 'edge-a', 'web', ['true'], 5)).rejects.toMatchObject({ statusCode: 502, message: expect.stringContaining('replicas talk plain HTTP') });
      await expect(a.client.exec({ id: 'r-plain', url: plainUrl }, 'edge-a', 'web', ['true'], 5)).rejects.toMatchObject({ statusCode: 502, message: expect.stringContaining('replicas talk HTTPS') });
    } finally {
      plain.close();
      for (const edge of links.edges.values()) edge.disconnect();
      await plainApp.close();
    }
  });

  it('will not serve peers from a tunnel that forwards (no loops), nor with a weak token', async () => {
    const app = Fastify();
    const forwarding = new RoutedTunnel({ local: a.links, selfId: 'x', ownerOf: () => undefined, peerUrl: () => undefined, client: a.client, log: silentLog });
    await expect(app.register(peerPlugin, { replicaToken, selfId: 'x', local: forwarding }).ready()).rejects.toThrow(/not a tunnel that forwards/);
    const weak = Fastify();
    await expect(weak.register(peerPlugin, { replicaToken: 'short', selfId: 'x', local: a.links }).ready()).rejects.toThrow(/at least 16/);
  });
});
