import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeStatusSchema, type EdgeStatus } from '../../protocol/edgeStatus.js';
import { api, Fleet, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Bearer mode (cloudcore on plain HTTP, loopback): the join answers a credential with its expiry;
 * the edge keeps it in node.credential (0600) and renews it before expiry with the bearer,
 * reconnecting once, as it does a certificate. 30-second credentials (cloudcore's shortest life);
 * the two tests use their own nodes and run at the same time.
 */

async function status(edge: Edge): Promise<EdgeStatus> {
  return EdgeStatusSchema.parse(await (await fetch(`${edge.statusUrl}/status`)).json());
}

describe.concurrent('bearer identity over plain HTTP', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  beforeAll(async () => { cloud = await fleet.startCloud({ extra: ['--node-cert-lifetime-seconds', '30'] }); });
  afterAll(() => fleet.cleanup());

  it('stores the credential with its expiry (0600), shows it, and renews it before it expires with one reconnect', async () => {
    const edge = await fleet.startEdge({ node: 'edge-b', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-b') });
    const first = await waitFor('linked', async () => { const s = await status(edge); return s.link.state === 'connected' ? s : undefined; });
    expect(first.identity).toMatchObject({ mode: 'bearer', serial: null, standing: 'valid' });
    expect(first.identity?.renewAt).not.toBeNull();
    const path = join(edge.dataDir, 'node.credential');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const before = readFileSync(path, 'utf8');
    expect(before).toMatch(/^edge-b\.[0-9a-f]+\nexpires-at \S+\nissued-at \S+\njoin-token-sha256 [0-9a-f]{64}\n$/);

    const renewed = await waitFor('renewed', async () => {
      const s = await status(edge);
      return edge.proc.lines.some((l) => l.msg === 'node identity renewed') && s.link.state === 'connected' ? s : undefined;
    }, 40_000, 500);
    expect(readFileSync(path, 'utf8').split('\n')[0]).not.toBe(before.split('\n')[0]);
    expect(renewed.identity?.notAfter).not.toBe(first.identity?.notAfter);
    expect(renewed.link.stats?.connects).toBe(2);
    // The credential never appears in the edge's log.
    expect(edge.proc.rawLines.some((l) => l.includes(before.split('\n')[0]!.split('.')[1]!))).toBe(false);
  }, 90_000);

  it('a credential file from an older edgecore (the credential alone) is renewed at once and gains its expiry', async () => {
    const edge = await fleet.startEdge({ node: 'edge-old', cloudUrl: cloud.url, joinToken: await api(cloud).token('edge-old') });
    await waitFor('linked', async () => (await status(edge)).link.state === 'connected');
    await edge.proc.stop();
    const path = join(edge.dataDir, 'node.credential');
    const credential = readFileSync(path, 'utf8').split('\n')[0]!;
    writeFileSync(path, `${credential}\n`, { mode: 0o600 }); // what an edgecore before expiring credentials wrote
    const again = await fleet.startEdge({ node: 'edge-old', cloudUrl: cloud.url, dataDir: edge.dataDir });
    await waitFor('renewed with an expiry', () => readFileSync(path, 'utf8').includes('\nexpires-at '), 30_000);
    expect(readFileSync(path, 'utf8').split('\n')[0]).not.toBe(credential);
    await waitFor('linked with the renewed credential', async () => (await status(again)).link.state === 'connected');
  }, 60_000);
});
