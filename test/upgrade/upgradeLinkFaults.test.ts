import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentUpgrade, Node } from '../../protocol/index.js';
import { buildArtefact, distDirWith } from '../helpers/edgeReleases.js';
import { Fleet, type Cloud } from '../helpers/fleet.js';
import { HttpTap } from '../helpers/httpTap.js';
import { localStatus, startInstalledNode, waitForVersion, type InstalledNode } from '../helpers/installedNode.js';
import { tlsApi } from '../helpers/tlsClient.js';
import { waitFor } from '../helpers/wait.js';

/**
 * An installed node (real artefact, its loader) whose only way to the HTTPS cloud is a loopback
 * proxy the test controls: the connection carrying the artefact is cut mid-download (the node
 * resumes and commits), then the cloud becomes unreachable right after the node switched
 * versions (the new agent cannot link, fails its health check, the loader rolls back with no
 * cloud, and the old agent reports why once the cloud is back).
 */

const OLD = '1.0.0-t1';
const NEW = '1.0.0-t2';
const HEALTH_SECONDS = 5;

describe('agent upgrade over a faulty link (real HTTPS cloudcore, real artefacts, real loader)', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let tap: HttpTap;
  let node: InstalledNode;
  let rest: ReturnType<typeof tlsApi>;
  const name = `faulty-${process.pid}`;
  const attempt = async () => (await rest.call<Node>('GET', `/nodes/${name}`)).body.status.agent?.upgrade;

  beforeAll(async () => {
    await buildArtefact(OLD);
    await buildArtefact(NEW);
    cloud = await fleet.startCloud({ tls: true, extra: ['--dist-dir', distDirWith(fleet.root, [NEW]), '--rollout-tick-ms', '200'] });
    rest = tlsApi(cloud);
    tap = new HttpTap(cloud.port, '');
    const url = (await tap.start()).replace('http:', 'https:');
    node = await startInstalledNode({ root: fleet.tempDir('ef-faulty-'), node: name, version: OLD, cloudUrl: url, joinToken: await rest.token(name), healthSeconds: HEALTH_SECONDS });
    await waitFor('the node linked', async () => (await rest.call<Node>('GET', `/nodes/${name}`)).body.status.agent?.version === OLD, 30_000);
  }, 600_000);

  afterAll(async () => {
    await node?.loader.stop();
    await tap?.stop();
    await fleet.cleanup();
  });

  it('the download cut mid-way resumes where it stopped, and the upgrade commits', async () => {
    tap.cutAnyAfter = 12 * 1024 * 1024;
    expect((await rest.call('POST', '/agent-upgrades', { name: 'cut', version: NEW })).status).toBe(201);
    await waitFor('Committed', async () => (await attempt())?.phase === 'Committed', 120_000);
    await waitForVersion(node, NEW);
    expect(tap.cutAt).toBeGreaterThan(12 * 1024 * 1024);
    const interrupted = node.loader.lines.find((l) => l.msg === 'artefact download interrupted; resuming');
    // What reached the file before the cut: not from zero again (what was in the socket buffers
    // when it came, several MiB on loopback, is fetched again by the Range request).
    expect(interrupted?.have as number).toBeGreaterThan(1024 * 1024);
    expect(node.loader.lines.find((l) => l.msg === 'artefact downloaded')?.requests).toBe(2);
    await waitFor('the AgentUpgrade Succeeded', async () => (await rest.call<AgentUpgrade>('GET', '/agent-upgrades/cut')).body.status?.phase === 'Succeeded', 30_000);
  }, 180_000);

  it('a new agent that cannot reach the cloud is rolled back by the node itself; the old agent reports why when the cloud is back', async () => {
    // The operator rolls back to revision 1, each node's own earlier version: OLD, still
    // installed (`old`), so a switch without a download (cloudcore does not even serve OLD).
    const from = node.loader.lines.length;
    const rollback = await rest.call('POST', '/agent-upgrades/cut/rollback', { toRevision: 1 });
    expect(rollback.status, JSON.stringify(rollback.body)).toBe(200);
    await waitFor('the switch', () => node.loader.lines.slice(from).some((l) => l.msg === 'switched to the new agent version; restarting'), 60_000, 10);
    tap.refuse = true;
    tap.dropAll();
    const cutAt = Date.now();
    // The new agent (OLD) starts, cannot link, fails its check; the loader goes back to NEW.
    const healthFailure = await waitFor('the health check to fail', () => node.loader.lines.slice(from).find((l) => l.msg === 'agent upgrade health check failed; exiting for the loader to roll back'), 60_000);
    expect(String(healthFailure.reason)).toBe(`version ${OLD} did not come healthy within ${HEALTH_SECONDS} s: the cloud link is not up`);
    const back = await waitForVersion(node, NEW);
    const rolledBackIn = (Date.now() - cutAt) / 1000;
    expect(back.upgrade?.lastAttempt).toMatchObject({ upgrade: 'cut', revision: 1, version: OLD, phase: 'RolledBack' });
    expect(back.upgrade?.lastAttempt?.message).toContain('the cloud link is not up');
    expect(back.upgrade?.lastAttempt?.message).toContain(`version ${OLD} exited with code 1 before it committed; the loader went back to ${NEW}`);
    expect(readlinkSync(join(node.home, 'current'))).toBe(NEW);
    expect(readlinkSync(join(node.home, 'broken'))).toBe(OLD);

    tap.refuse = false;
    await waitFor('the cloud to hear of the rollback', async () => (await attempt())?.phase === 'RolledBack', 60_000);
    // Never retried by the node: still on NEW, same attempt.
    expect((await localStatus(node)).upgrade?.lastAttempt?.phase).toBe('RolledBack');
    console.log(`[measured] cloud cut right after the switch: back on ${NEW} by itself ${rolledBackIn.toFixed(1)} s later (health bound ${HEALTH_SECONDS} s)`);
  }, 180_000);
});
