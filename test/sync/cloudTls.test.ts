import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, runBin, runToEnd, type Cloud } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const READY = existsSync('/usr/bin/openssl');
if (!READY) console.warn('[cloudcore over HTTPS] SKIPPED: needs openssl to make a test CA');

/**
 * cloudcore serving HTTPS with a certificate from a private CA: edges join and sync over
 * https:// and wss://, trusting the CA through NODE_EXTRA_CA_CERTS; an edge without it is told
 * what to do. Real processes, real TLS on loopback.
 */
describe.skipIf(!READY)('cloudcore over HTTPS', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let ca = '';
  let trusted: NodeJS.ProcessEnv = {};
  const edgectl = (args: string[], env: NodeJS.ProcessEnv = trusted) =>
    runToEnd('edgectl', args, { EF_SERVER: cloud.url, EF_TOKEN: cloud.token, ...env });

  beforeAll(async () => {
    const dir = fleet.tempDir();
    ca = join(dir, 'ca.pem');
    const at = (name: string) => join(dir, name);
    writeFileSync(at('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('ca.key'), '-out', ca, '-days', '1', '-subj', '/CN=EdgeFleet test CA']);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1']);
    await run('openssl', ['x509', '-req', '-in', at('server.csr'), '-CA', ca, '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.pem'), '-days', '1', '-extfile', at('san.ext')]);
    cloud = await fleet.startCloud({ tls: true, extra: ['--tls-cert', at('server.pem'), '--tls-key', at('server.key')] });
    trusted = { NODE_EXTRA_CA_CERTS: ca };
  });
  afterAll(() => fleet.cleanup());

  it('announces an https URL and refuses plain HTTP on that port', async () => {
    expect(cloud.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const plain = await fetch(cloud.url.replace('https:', 'http:') + '/api/v1/nodes').then((r) => r.status, (err: Error) => err.message);
    expect(plain).not.toBe(200);
  });

  it('an edge that trusts the CA joins over https, links over wss and runs what the cloud sends', async () => {
    const token = (await edgectl(['token', 'create', 'edge-1'])).out.trim();
    expect(token).toMatch(/\./);
    const edge = await fleet.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: token, env: trusted });
    await waitFor('edge-1 linked', async () => (await fleet.edgeStatus(edge)).link.state === 'connected');
    const app = join(fleet.tempDir(), 'app.yaml');
    writeFileSync(app, 'kind: App\nmetadata: { name: tls-demo }\nspec:\n  selector: {}\n  template:\n    runtime: process\n    command: sleep\n    args: ["300"]\n');
    const applied = await edgectl(['apply', '-f', app]);
    expect(applied.err).toBe('');
    await waitFor('workload Running on edge-1', async () =>
      (await fleet.edgeStatus(edge)).workloads.some((w) => w.name === 'tls-demo' && w.status?.state === 'Running'));
    expect((await edgectl(['get', 'nodes'])).out).toMatch(/edge-1\s+Ready/);
  });

  it('an edge that does not trust the CA says which certificate and what to do', async () => {
    const token = (await edgectl(['token', 'create', 'edge-2'])).out.trim();
    const edge = await fleet.startEdge({ node: 'edge-2', cloudUrl: cloud.url, joinToken: token });
    const status = await waitFor('join error shown', async () => {
      const s = await fleet.edgeStatus(edge);
      return s.link.lastError?.includes('NODE_EXTRA_CA_CERTS') ? s : undefined;
    });
    expect(status.link.lastError).toMatch(/^cannot reach cloudcore at https:\/\/127\.0\.0\.1:\d+: .*certificate.*not signed by a CA this node trusts/);
    // edgectl without the CA names the TLS failure, rather than a bare "fetch failed", and the way out.
    const untrusted = await edgectl(['get', 'nodes'], {});
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.err).toMatch(/cannot reach cloudcore at https:.*certificate.*trust it with NODE_EXTRA_CA_CERTS=/);
  });

  it('refuses half a TLS setting or an unreadable file, naming it', async () => {
    const half = await runToEnd('cloudcore', ['--data-dir', fleet.tempDir(), '--port', '0', '--tls-cert', ca]);
    expect(half.code).toBe(2);
    expect(half.err).toContain('tlsKey');
    const missing = runBin('cloudcore', ['--data-dir', fleet.tempDir(), '--port', '0', '--tls-cert', ca, '--tls-key', '/nonexistent/key.pem']);
    expect(await missing.exited).toBe(1);
    await missing.drained;
    expect(missing.lines.find((l) => l.msg === 'cloudcore failed to start')?.err).toMatch(/^cannot read tlsKey file \/nonexistent\/key\.pem: ENOENT/);
  });
});
