import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdUnavailable } from '../helpers/etcdCluster.js';
import { runToEnd, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { ReplicaFleet } from './replicaFleet.js';

/**
 * Replicas as they run by default, over HTTPS: the first makes the CA and every other takes it
 * from etcd, so one pin holds for all; a node joins at one replica, links to another with its
 * certificate, and an exec asked at the first is forwarded over HTTPS (checked against that CA).
 */
const unavailable = etcdUnavailable();

describe.skipIf(unavailable)(`replicas over HTTPS share one CA${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let rf: ReplicaFleet;
  let a: Cloud;
  let b: Cloud;
  let edge: Edge;
  const edgectl = (cloud: Cloud, args: string[]) => runToEnd('edgectl', args, {
    EF_SERVER: cloud.url, EF_TOKEN: cloud.token, NODE_EXTRA_CA_CERTS: join(cloud.dataDir, 'pki', 'ca.crt'),
  });

  beforeAll(async () => {
    rf = await ReplicaFleet.start();
    a = await rf.startReplica('a', { tls: true });
    b = await rf.startReplica('b', { tls: true });
  }, 120_000);

  afterAll(async () => { await rf?.stop(); }, 60_000);

  it('every replica serves certificates from the first one\'s CA: one pin', () => {
    expect(a.url).toMatch(/^https:/);
    expect(a.caPin).toBeTruthy();
    expect(b.caPin).toBe(a.caPin);
    expect(readFileSync(join(b.dataDir, 'pki', 'ca.crt'), 'utf8')).toBe(readFileSync(join(a.dataDir, 'pki', 'ca.crt'), 'utf8'));
  });

  it('a node joins with a token made at A, links to B over mutual TLS, and exec asked at A runs on it through B', async () => {
    const token = (await edgectl(a, ['token', 'create', 'tls-edge'])).out.trim();
    expect(token.length).toBeGreaterThan(20);
    edge = await rf.fleet.startEdge({ node: 'tls-edge', cloudUrl: `${b.url},${a.url}`, joinToken: token, extra: ['--cloud-url-order', 'listed'] });
    await waitFor('tls-edge linked to B', async () => (await rf.linkedTo(edge)) === b.url, 30_000);

    const app = join(rf.fleet.tempDir(), 'app.yaml');
    writeFileSync(app, 'kind: App\nmetadata: { name: tls-spread }\nspec:\n  selector: {}\n  template:\n    runtime: process\n    command: sleep\n    args: ["300"]\n');
    expect((await edgectl(a, ['apply', '-f', app])).err).toBe('');
    await waitFor('tls-spread running', () => rf.fleet.runningWorkload(edge, 'tls-spread'), 30_000);

    const exec = await edgectl(a, ['exec', 'tls-edge', 'tls-spread', '--', 'echo', 'through-b']);
    expect(exec.err).toBe('');
    expect(exec.out).toContain('through-b');
  }, 90_000);
});
