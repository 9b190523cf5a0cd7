import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeStatusSchema, type EdgeStatus } from '../../protocol/edgeStatus.js';
import { Fleet, markerApp, type Cloud, type Edge } from '../helpers/fleet.js';
import { tlsApi } from '../helpers/tlsClient.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * Node identity end to end with the real cloudcore over HTTPS: a pinned join with no
 * NODE_EXTRA_CA_CERTS, an impostor cloudcore (its own CA) refused before the token leaves the
 * edge, the node key never leaving the node, and rotation with 30-second certificates (cloudcore's
 * shortest) while a workload runs and a device (Debian's mosquitto_pub) reports: no workload
 * restart, no lost upstream entry, about one link reconnect per renewal, also across a cloudcore
 * restart. The two parts have their own fleets and run at the same time.
 */

const run = promisify(execFile);
const HAVE_MOSQUITTO = existsSync('/usr/bin/mosquitto_pub');
if (!HAVE_MOSQUITTO) console.warn('[node identity rotation] device part SKIPPED: mosquitto-clients not installed');

async function status(edge: Edge): Promise<EdgeStatus> {
  return EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json());
}

async function newToken(cloud: Cloud, node: string): Promise<string> {
  const r = await tlsApi(cloud).call<{ token: string }>('POST', '/tokens', { node });
  if (r.status !== 201) throw new Error(`token create failed: ${r.text}`);
  return r.body.token;
}

/** Every file under `dir`, as bytes (the store, logs, the CA dir). */
function allFiles(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...allFiles(path));
    else if (entry.isFile()) out.push(readFileSync(path));
  }
  return out;
}

/** Node and server certificate life in the rotation part; the run is counted in lifetimes. */
const LIFETIME_SECONDS = 30;

// Concurrent suites (their own cloudcores and edges); each one's tests stay in order.
describe.concurrent('pinned join with the real cloudcore over HTTPS', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let impostor: Cloud;
  beforeAll(async () => {
    cloud = await fleet.startCloud({ tls: true });
    impostor = await fleet.startCloud({ tls: true, dataDir: join(fleet.root, 'impostor') });
  });
  afterAll(() => fleet.cleanup());

  it.sequential('an impostor cloudcore with its own CA: the edge refuses before sending the token, and the impostor logs no join', async () => {
    const token = await newToken(cloud, 'edge-1');
    expect(token).toMatch(/^EF1-[0-9a-f]{64}-/);
    const edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: impostor.url, joinToken: token, dataDir: join(fleet.root, 'fooled') });
    const s = await waitFor('pin mismatch shown', async () => { const st = await status(edge); return st.link.lastError?.includes('presented a CA bundle') ? st : undefined; });
    expect(s.link.lastError).toContain(`the server at ${impostor.url} presented a CA bundle whose SHA-256 is ${impostor.caPin}`);
    expect(s.link.lastError).toContain(`the join token pins ${cloud.caPin}`);
    await edge.proc.stop();
    const secret = token.split('.').at(-1)!;
    expect(impostor.proc.rawLines.some((l) => l.includes(secret))).toBe(false);
    expect(impostor.proc.lines.some((l) => /join/i.test(String(l.msg)))).toBe(false);
    expect(allFiles(impostor.dataDir).some((b) => b.includes(secret))).toBe(false);
    expect(existsSync(join(fleet.root, 'fooled', 'pki', 'node.key'))).toBe(false);
  });

  it.sequential('joins with no NODE_EXTRA_CA_CERTS; openssl verifies the certificate; the key is 0600 and never reaches the cloud', async () => {
    const edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: await newToken(cloud, 'edge-1'), env: { NODE_EXTRA_CA_CERTS: '' } });
    const s = await waitFor('linked', async () => { const st = await status(edge); return st.link.state === 'connected' ? st : undefined; });
    expect(s.identity).toMatchObject({ mode: 'certificate', standing: 'valid' });
    const pki = join(edge.dataDir, 'pki');
    expect(statSync(join(pki, 'node.key')).mode & 0o777).toBe(0o600);
    expect(execFileSync('openssl', ['verify', '-CAfile', join(pki, 'ca-bundle.crt'), join(pki, 'node.crt')], { encoding: 'utf8' }).trim()).toBe(`${join(pki, 'node.crt')}: OK`);
    expect(execFileSync('openssl', ['x509', '-noout', '-subject', '-in', join(pki, 'node.crt')], { encoding: 'utf8' })).toMatch(/CN ?= ?edge-1\b/);

    const keyLines = readFileSync(join(pki, 'node.key'), 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
    const keyBase64 = keyLines.join('');
    const keyDer = Buffer.from(keyBase64, 'base64');
    for (const bytes of allFiles(cloud.dataDir)) {
      expect(bytes.includes(keyLines[0]!)).toBe(false);
      expect(bytes.includes(keyDer.subarray(keyDer.length - 32))).toBe(false);
    }
    expect(cloud.proc.rawLines.some((l) => l.includes(keyLines[0]!))).toBe(false);
    expect(edge.proc.rawLines.some((l) => l.includes(keyLines[0]!))).toBe(false);
    for (const path of ['/nodes', '/nodes/edge-1', '/events']) {
      const r = await tlsApi(cloud).call('GET', path);
      expect(r.text.includes(keyLines[0]!)).toBe(false);
    }

    // Revoked while running: the refused reconnect is probed with a renewal, refused too: a new token is needed.
    expect((await tlsApi(cloud).call<{ revoked: boolean }>('POST', '/nodes/edge-1/revoke')).body.revoked).toBe(true);
    const revoked = await waitFor('needs a new token after revocation', async () => { const st = await status(edge); return st.identity?.standing === 'needs-new-token' ? st : undefined; });
    expect(revoked.identity?.lastRenewalError).toMatch(/revoked|replaced|new join token/);
    expect(edge.proc.lines.filter((l) => String(l.msg).startsWith('node identity needs a new join token'))).toHaveLength(1);
  });
});

describe.concurrent(`rotation with ${LIFETIME_SECONDS}-second node and server certificates`, () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let edge: Edge;
  let mqttPort = 0;
  let password = '';
  let published = 0;
  let publishing = true;
  let publisher: Promise<void> = Promise.resolve();
  const lifetimes = ['--node-cert-lifetime-seconds', String(LIFETIME_SECONDS), '--server-cert-lifetime-seconds', String(LIFETIME_SECONDS)];

  beforeAll(async () => {
    cloud = await fleet.startCloud({ tls: true, port: 0, extra: lifetimes });
    edge = await fleet.startEdge({ node: 'edge-r', cloudUrl: cloud.url, joinToken: await newToken(cloud, 'edge-r'), extra: ['--telemetry-batch-ms', '200'] });
    mqttPort = Number(new URL(String(edge.proc.lines.find((l) => l.msg === 'edgecore ready')!.mqttUrl)).port);
    const api = tlsApi(cloud).call;
    expect((await api('POST', '/apps', markerApp('steady', join(fleet.root, 'steady.marker')))).status).toBe(201);
    expect((await api('POST', '/devicemodels', { metadata: { name: 'counter' }, spec: { protocol: 'virtual', properties: [{ name: 'n', type: 'int', accessMode: 'ReadOnly' }] } })).status).toBe(201);
    const device = await api<{ credentials: { password: string } }>('POST', '/devices', { metadata: { name: 'counter-1' }, spec: { model: 'counter', nodeName: 'edge-r', protocol: { name: 'virtual' } } });
    expect(device.status).toBe(201);
    password = device.body.credentials.password;
    await waitFor('workload running and device on the edge', async () => {
      const s = await status(edge);
      return s.workloads.some((w) => w.name === 'steady' && w.status?.state === 'Running') && (s.mqtt?.devices.length ?? 0) === 1;
    }, 30_000);
  }, 90_000);
  afterAll(async () => { publishing = false; await publisher; await fleet.cleanup(); });

  it.skipIf(!HAVE_MOSQUITTO)('runs for several lifetimes: no workload restart, no lost telemetry, one reconnect per renewal, across a cloudcore restart', async () => {
    const first = await status(edge);
    const workloadPid = first.workloads.find((w) => w.name === 'steady')!.status!.pid;
    const serials = new Set<string>([first.identity!.serial!]);
    publisher = (async () => {
      while (publishing) {
        const n = published + 1;
        await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort), '-V', 'mqttv311', '-u', 'counter-1', '-P', password, '-i', 'counter-1-pub', '-q', '1',
          '-t', 'ef/devices/counter-1/telemetry', '-m', JSON.stringify({ values: { n } })]);
        published = n;
        await sleep(500);
      }
    })();

    // ~1.5 lifetimes, a cloudcore restart (same port and data dir), then ~1.6 more.
    const until = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const s = await status(edge);
        if (s.identity?.serial) serials.add(s.identity.serial);
        await sleep(1000);
      }
    };
    await until(1.5 * LIFETIME_SECONDS * 1000);
    const before = cloud;
    await before.proc.stop();
    cloud = await fleet.startCloud({ tls: true, port: before.port, dataDir: before.dataDir, extra: lifetimes });
    await until(1.6 * LIFETIME_SECONDS * 1000);
    publishing = false;
    await publisher;

    const last = await waitFor('link up at the end', async () => { const s = await status(edge); return s.link.state === 'connected' && s.outbox.depth === 0 ? s : undefined; }, 30_000);
    // Renewed at least three times (at 2/3 of 30 s: every ~19 s over ~95 s), each with its own serial.
    expect(serials.size).toBeGreaterThanOrEqual(4);
    // Each cloudcore rotated its own server certificate while the edge was linked (at 2/3 of its life).
    for (const c of [before, cloud]) expect(c.proc.lines.filter((l) => l.msg === 'rotated the server certificate').length).toBeGreaterThanOrEqual(1);
    expect(last.identity?.standing).toBe('valid');
    const renewals = edge.proc.lines.filter((l) => l.msg === 'node identity renewed').length;
    // One connect to start, one per renewal, one after the cloudcore restart (and at most a couple of stray ones).
    expect(last.link.stats!.connects).toBeGreaterThanOrEqual(renewals + 1);
    expect(last.link.stats!.connects).toBeLessThanOrEqual(renewals + 4);
    // The workload never restarted.
    const steady = last.workloads.find((w) => w.name === 'steady')!;
    expect(steady.status?.restarts).toBe(0);
    expect(steady.status?.pid).toBe(workloadPid);
    // Every telemetry sample published reached the cloud (the outbox kept its items across reconnects).
    const samples = await tlsApi(cloud).call<{ items: { values: { n: number } }[] }>('GET', '/devices/counter-1/telemetry?limit=10000');
    const seen = new Set(samples.body.items.map((i) => i.values.n));
    const missing = Array.from({ length: published }, (_, i) => i + 1).filter((n) => !seen.has(n));
    console.info(`[rotation] certificates ${serials.size}, renewals ${renewals}, link connects ${last.link.stats!.connects}, telemetry published ${published}, missing ${missing.length}, workload restarts ${steady.status?.restarts}`);
    expect(missing).toEqual([]);
  }, 180_000);
});
