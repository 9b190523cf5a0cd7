import { readlinkSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentUpgrade, Node } from '../../protocol/index.js';
import { buildArtefact, buildBrokenArtefact, distDirWith } from '../helpers/edgeReleases.js';
import { Fleet, markerApp, type Cloud } from '../helpers/fleet.js';
import { localStatus, startInstalledNode, waitForVersion, type InstalledNode } from '../helpers/installedNode.js';
import { tlsApi } from '../helpers/tlsClient.js';
import { isAlive, sleep, waitFor } from '../helpers/wait.js';
import { HAVE_CHROMIUM, launchChromium } from '../views/dashboardFixtures.js';

/**
 * Over-the-air agent upgrade end to end: a real HTTPS cloudcore serving real x64 artefacts from
 * --dist-dir, three nodes installed from the old artefact and supervised by its loader, an
 * AgentUpgrade rolled out in waves (1 node, then the rest). Then a release that cannot start:
 * the first wave's node rolls back by itself and says why, and the rollout stops there.
 */

const OLD = '1.0.0-t1';
const NEW = '1.0.0-t2';
const BROKEN = '1.0.0-t3-broken';
const NODES = ['up-a', 'up-b', 'up-c'];
const WAVES = { type: 'waves', waves: [{ count: 1 }, { percent: 100 }] };

describe('agent upgrade of installed nodes, in waves, with rollback (real cloudcore, real artefacts, real loader)', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  let rest: ReturnType<typeof tlsApi>;
  const nodes: InstalledNode[] = [];
  const workloadPids = new Set<number>();

  const nodeObj = async (name: string): Promise<Node> => (await rest.call<Node>('GET', `/nodes/${name}`)).body;
  const upgradeObj = async (name: string): Promise<AgentUpgrade> => (await rest.call<AgentUpgrade>('GET', `/agent-upgrades/${name}`)).body;
  const attemptOf = async (name: string) => (await nodeObj(name)).status.agent?.upgrade;

  beforeAll(async () => {
    await buildArtefact(OLD);
    await buildArtefact(NEW);
    await buildBrokenArtefact(NEW, BROKEN);
    const dist = distDirWith(fleet.root, [NEW, BROKEN]);
    cloud = await fleet.startCloud({ tls: true, extra: ['--dist-dir', dist, '--rollout-tick-ms', '200'] });
    rest = tlsApi(cloud);
    expect((await rest.call('POST', '/apps', markerApp('keeper', join(fleet.root, 'keeper.marker')))).status).toBe(201);
    for (const node of NODES) {
      nodes.push(await startInstalledNode({
        root: fleet.tempDir(`ef-${node}-`), node, version: OLD, cloudUrl: cloud.url, joinToken: await rest.token(node), healthSeconds: 30,
      }));
    }
    for (const n of nodes) {
      await waitFor(`${n.node}'s workload running`, async () => (await localStatus(n)).workloads.find((w) => w.status?.state === 'Running'), 30_000);
    }
  }, 600_000);

  afterAll(async () => {
    for (const n of nodes) await n.loader.stop();
    for (const pid of workloadPids) if (isAlive(pid)) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
    await fleet.cleanup();
  });

  it('upgrades three nodes in two waves; each commits after its health check; workloads keep their pids', async () => {
    const before = new Map<string, number>();
    for (const n of nodes) {
      const pid = (await localStatus(n)).workloads[0]!.status!.pid!;
      before.set(n.node, pid);
      workloadPids.add(pid);
    }
    const started = Date.now();
    const res = await rest.call('POST', '/agent-upgrades', { name: 'to-t2', version: NEW, strategy: WAVES });
    expect(res.status).toBe(201);

    // Watch who moves first: the one node of the first wave must have committed before any
    // other node is even told to download.
    const firstSeen = new Map<string, { phase: string; at: number }[]>();
    await waitFor('every node Committed to the new version', async () => {
      let committed = 0;
      for (const name of NODES) {
        const a = await attemptOf(name);
        if (!a || a.upgrade !== 'to-t2') continue;
        const seen = firstSeen.get(name) ?? [];
        // The node's own time of entering the phase (same host clock for all): what this
        // poll saw first may be later than what happened first.
        if (seen.at(-1)?.phase !== a.phase) seen.push({ phase: a.phase, at: Date.parse(a.since) });
        firstSeen.set(name, seen);
        if (a.phase === 'Committed') committed++;
      }
      return committed === NODES.length;
    }, 240_000, 150);
    const seconds = (Date.now() - started) / 1000;

    const firstCommit = [...firstSeen].map(([name, s]) => ({ name, at: s.find((x) => x.phase === 'Committed')!.at })).sort((a, b) => a.at - b.at)[0]!;
    for (const [name, seen] of firstSeen) {
      if (name === firstCommit.name) continue;
      expect(seen[0]!.at, `${name} started only after ${firstCommit.name} (wave 1) committed`).toBeGreaterThanOrEqual(firstCommit.at);
    }
    await waitFor('the AgentUpgrade Succeeded', async () => (await upgradeObj('to-t2')).status?.phase === 'Succeeded', 30_000);

    for (const n of nodes) {
      const s = await waitForVersion(n, NEW);
      expect(s.upgrade?.previousVersion).toBe(OLD);
      expect(s.upgrade?.lastAttempt).toMatchObject({ upgrade: 'to-t2', version: NEW, phase: 'Committed' });
      expect(readlinkSync(join(n.home, 'current'))).toBe(NEW);
      expect(readlinkSync(join(n.home, 'old'))).toBe(OLD);
      expect(existsSync(join(n.home, 'new'))).toBe(false);
      expect((await nodeObj(n.node)).status.agent?.version).toBe(NEW);
      // The same process: handed over by the old agent, adopted by the new one.
      expect(s.workloads[0]!.status).toMatchObject({ state: 'Running', pid: before.get(n.node) });
      // The agent restarted through the loader with exit 75, not a crash.
      expect(n.loader.stderr.join('\n')).not.toMatch(/exited with code/);
    }
    console.log(`[measured] 3 nodes upgraded ${OLD} → ${NEW} in 2 waves (1, then 2) in ${seconds.toFixed(1)} s; process workload pids kept: ${[...before.values()].join(',')}`);
  }, 300_000);

  it('a release that exits at start is rolled back by the loader on the first wave\'s node, which says why; the rollout stops there', async () => {
    const pidBefore = new Map<string, number | null | undefined>();
    for (const n of nodes) pidBefore.set(n.node, (await localStatus(n)).workloads[0]!.status?.pid);
    const res = await rest.call('POST', '/agent-upgrades', { name: 'to-broken', version: BROKEN, strategy: WAVES });
    expect(res.status).toBe(201);
    const rolledBack = await waitFor('a node RolledBack', async () => {
      for (const name of NODES) {
        const a = await attemptOf(name);
        if (a?.upgrade === 'to-broken' && a.phase === 'RolledBack') return { name, a };
      }
      return undefined;
    }, 180_000, 200);
    expect(rolledBack.a.message).toMatch(new RegExp(`version ${BROKEN.replace(/\./g, '\\.')} exited with code 1 before it committed; the loader went back to ${NEW.replace(/\./g, '\\.')}`));
    const n = nodes.find((x) => x.node === rolledBack.name)!;
    const s = await waitForVersion(n, NEW);
    // Through two agent restarts (into the broken one and back), the workload never stopped.
    expect(s.workloads[0]!.status?.pid).toBe(pidBefore.get(n.node));
    expect(s.upgrade?.lastAttempt).toMatchObject({ upgrade: 'to-broken', phase: 'RolledBack' });
    expect(readlinkSync(join(n.home, 'current'))).toBe(NEW);
    expect(readlinkSync(join(n.home, 'broken'))).toBe(BROKEN);
    expect(n.loader.stderr.join('\n')).toContain('broken on purpose');
    expect(readFileSync(join(n.dataDir, 'upgrade', 'attempt.json'), 'utf8')).toContain('RolledBack');

    await waitFor('the rollout to stop', async () => ['Failed', 'RolledBack', 'Paused', 'Aborted'].includes((await upgradeObj('to-broken')).status?.phase ?? ''), 60_000);
    // Give the controller several ticks: the other nodes are never told to try the broken release.
    await sleep(3000);
    for (const other of NODES.filter((x) => x !== rolledBack.name)) {
      const a = await attemptOf(other);
      expect(a?.upgrade === 'to-broken' ? a.phase : 'untouched', other).toBe('untouched');
      expect((await localStatus(nodes.find((x) => x.node === other)!)).version).toBe(NEW);
    }
  }, 300_000);

  it.skipIf(!HAVE_CHROMIUM)(`the dashboard shows both upgrades with each node's attempt, and starts one from its form${HAVE_CHROMIUM ? '' : ' (skipped: no /usr/bin/chromium)'}`, async () => {
    const browser = await launchChromium();
    try {
      // cloudcore's certificate is from its own CA: the browser is told to accept it, as an
      // operator's browser would after trusting that CA.
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (err) => pageErrors.push(err.message));
      await page.goto(`${cloud.url}/ui/#/upgrades`);
      await page.getByLabel('Operator token').fill(cloud.token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('table.upgrades tr[data-upgrade="to-t2"]').waitFor();
      expect(await page.locator('table.upgrades tr[data-upgrade="to-t2"]').textContent()).toContain('Succeeded');
      expect(await page.locator('table.upgrades tr[data-upgrade="to-broken"]').textContent()).toMatch(/Failed|RolledBack/);

      // One upgrade: each node told a version, with its attempt.
      await page.locator('a', { hasText: 'to-broken' }).click();
      await page.getByRole('heading', { name: 'Agent upgrade to-broken' }).waitFor();
      await page.locator('table.upgrade-nodes tbody tr').first().waitFor();
      const rows = await page.locator('table.upgrade-nodes tbody tr').allTextContents();
      expect(rows.join('\n')).toMatch(/RolledBack \(revision 2\)/);
      expect(rows.join('\n')).toContain('exited with code 1 before it committed');

      // The form: a bad wave list is named next to its field and nothing is stored…
      await page.goto(`${cloud.url}/ui/#/upgrades`);
      await page.getByRole('heading', { name: 'Start an upgrade' }).waitFor();
      await page.locator('#upgrade-version').selectOption(NEW);
      await page.locator('#upgrade-name').fill('again');
      await page.locator('#upgrade-waves').fill('1,50%');
      await page.getByRole('button', { name: 'Start upgrade' }).click();
      await page.locator('[data-field="waves"] .field-error', { hasText: 'last wave' }).waitFor();
      expect((await rest.call('GET', '/agent-upgrades/again')).status).toBe(404);
      // …and a good one starts it: every node already runs NEW, so it succeeds at once.
      await page.locator('#upgrade-waves').fill('1,100%');
      await page.getByRole('button', { name: 'Start upgrade' }).click();
      await page.getByRole('heading', { name: 'Agent upgrade again' }).waitFor();
      await waitFor('the new upgrade Succeeded on the page', async () => (await page.locator('[data-rollout]').first().getAttribute('data-rollout')) === 'Succeeded', 30_000);
      expect((await upgradeObj('again')).spec.version).toBe(NEW);
      expect(pageErrors).toEqual([]);
      await context.close();
    } finally {
      await browser.close();
    }
  }, 120_000);
});
