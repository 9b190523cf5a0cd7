import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newKeyFileText } from '../../cloudcore/store/secretSealing.js';
import { EtcdCluster, etcdUnavailable, freeLoopbackPort } from '../helpers/etcdCluster.js';
import { Fleet, runBin } from '../helpers/fleet.js';

/**
 * Issue 23, test 6: a cloudcore given an etcd it cannot use stops at start, non-zero, with the
 * setting named: nothing listening, an endpoint of another cluster, TLS where the member speaks
 * plain HTTP, settings that do not go together.
 */
const unavailable = etcdUnavailable();

describe.skipIf(unavailable)(`bad etcd settings${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let fleet: Fleet;
  let cluster: EtcdCluster;
  let other: EtcdCluster;
  let keyFile: string;

  beforeAll(async () => {
    fleet = new Fleet();
    cluster = await EtcdCluster.start({ size: 3 });
    other = await EtcdCluster.start({ size: 1 });
    keyFile = join(fleet.root, 'secret.key');
    writeFileSync(keyFile, newKeyFileText(), { mode: 0o600 });
  }, 60_000);

  afterAll(async () => {
    await fleet?.cleanup();
    await cluster?.stop();
    await other?.stop();
  });

  /** Runs cloudcore to its end with these etcd flags; its exit code and the reason it gave. */
  async function start(extra: string[]): Promise<{ code: number | null; reason: string }> {
    const proc = runBin('cloudcore', [
      '--data-dir', fleet.tempDir('cloud-'), '--port', '0', '--insecure-plain-http', 'true', '--store', 'etcd', '--secret-key-file', keyFile, ...extra,
    ]);
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), 60_000);
    const [code] = await Promise.all([proc.exited, proc.drained]);
    clearTimeout(timer);
    const fatal = proc.lines.find((l) => l.msg === 'cloudcore failed to start');
    return { code, reason: [String(fatal?.err ?? ''), ...proc.stderr].join('\n') };
  }

  it('nothing listening at an endpoint: exit 1 naming --etcd-endpoints and the URL', async () => {
    const dead = `http://127.0.0.1:${await freeLoopbackPort()}`;
    const r = await start(['--etcd-endpoints', dead, '--etcd-timeout-seconds', '2']);
    expect(r.code).toBe(1);
    expect(r.reason).toMatch(/--etcd-endpoints/);
    expect(r.reason).toContain(dead);
  }, 60_000);

  it('an endpoint that belongs to another cluster: exit 1 naming it', async () => {
    const stranger = other.endpointList[0]!;
    const r = await start(['--etcd-endpoints', `${cluster.endpointList[0]},${stranger}`, '--etcd-timeout-seconds', '2']);
    expect(r.code).toBe(1);
    expect(r.reason).toMatch(/--etcd-endpoints/);
    expect(r.reason).toContain(stranger);
  }, 60_000);

  it('https to a member that speaks plain HTTP: exit 1 naming the TLS setting', async () => {
    const ca = join(fleet.root, 'etcd-ca.crt');
    const key = join(fleet.root, 'etcd-ca.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', ca, '-days', '1', '-subj', '/CN=test etcd ca'], { stdio: 'ignore' });
    const tlsUrl = cluster.endpointList[0]!.replace('http:', 'https:');
    const r = await start(['--etcd-endpoints', tlsUrl, '--etcd-ca', ca, '--etcd-timeout-seconds', '2']);
    expect(r.code).toBe(1);
    expect(r.reason).toMatch(/--etcd-(endpoints|ca)/);
    expect(r.reason).toMatch(/TLS|tls|https/);
  }, 60_000);

  it('a replica whose secret key file differs from the fleet\'s: exit 1 saying every replica needs the same key file', async () => {
    const prefix = `/edgefleet-keys-${Date.now()}/`;
    const first = runBin('cloudcore', [
      '--data-dir', fleet.tempDir('cloud-'), '--port', '0', '--insecure-plain-http', 'true', '--store', 'etcd',
      '--etcd-endpoints', cluster.endpoints, '--etcd-prefix', prefix, '--secret-key-file', keyFile,
    ]);
    try {
      await first.waitForLog('cloudcore ready', 30_000);
      const otherKey = join(fleet.root, 'other.key');
      writeFileSync(otherKey, newKeyFileText(), { mode: 0o600 });
      const r = await start(['--etcd-endpoints', cluster.endpoints, '--etcd-prefix', prefix, '--secret-key-file', otherKey]);
      expect(r.code).toBe(1);
      expect(r.reason).toMatch(/same secret key file/);
    } finally {
      await first.stop();
    }
  }, 60_000);

  it('settings that do not go together: exit 2 naming them, before anything is touched', async () => {
    const noKey = runBin('cloudcore', ['--data-dir', fleet.tempDir('cloud-'), '--store', 'etcd', '--etcd-endpoints', cluster.endpoints]);
    expect(await noKey.exited).toBe(2);
    await noKey.drained;
    expect(noKey.stderr.join('\n')).toMatch(/secretKeyFile.*same key file/);
    const stray = runBin('cloudcore', ['--data-dir', fleet.tempDir('cloud-'), '--etcd-endpoints', cluster.endpoints]);
    expect(await stray.exited).toBe(2);
    await stray.drained;
    expect(stray.stderr.join('\n')).toMatch(/etcdEndpoints.*--store etcd/);
  }, 60_000);
});
