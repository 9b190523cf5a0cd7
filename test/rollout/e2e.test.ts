import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { Rollout } from '../../protocol/index.js';
import { api, Fleet, runToEnd, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 5, end to end: real cloudcore, three real edgecores, real processes. A new version goes
 * out in two waves (one canary, then the rest after an operator's approval through the real
 * edgectl), and a version that crashes on the canary trips the threshold and is rolled back
 * there while the other two nodes never start it. Each node's marker file records what ran.
 */
describe('rollout across three real edges', () => {
  const fleet = new Fleet();
  let cloud: Cloud;
  const edges: Edge[] = [];
  const sites = ['s1', 's2', 's3'];
  const marker = (site: string) => join(fleet.root, `marker-${site}`);
  /** The site whose node is the canary (stable hash order: the same for every rollout). */
  let canary = '';
  const markerText = (site: string) => (existsSync(marker(site)) ? readFileSync(marker(site), 'utf8') : '');

  /** One app; a variant per site gives each node its own marker file (and shows variants work on real edges). */
  const app = (version: string, crash = false) => ({
    metadata: { name: 'roll' },
    spec: {
      selector: { matchExpressions: [{ key: 'site', operator: 'Exists' }] },
      template: {
        runtime: 'process', command: '/bin/sh',
        args: ['-c', `echo "started $EF_VERSION" >> "$MARKER"; ${crash ? 'exit 3' : 'exec sleep 600'}`],
        env: { EF_VERSION: version, MARKER: '/dev/null' },
        restartPolicy: 'Always',
      },
      strategy: {
        type: 'waves', waves: [{ count: 1 }, { percent: 100, approval: true }],
        minReadySeconds: 1, failureThreshold: 0, autoRollback: true,
      },
      variants: sites.map((site) => ({ name: site, selector: { matchLabels: { site } }, overrides: { env: { MARKER: marker(site) } } })),
    },
  });

  const rollout = async () => (await api(cloud).call<Rollout>('GET', '/apps/roll/rollout')).body;
  const until = (what: string, ok: (r: Rollout) => boolean) =>
    waitFor(what, async () => { const r = await rollout(); return r?.status && ok(r) ? r : undefined; }, 60_000, 200);
  /** The generation each edge runs Running, by site (undefined while it is not Running). */
  const running = async () => {
    const out: Record<string, number | undefined> = {};
    for (const [i, edge] of edges.entries()) {
      const w = (await fleet.edgeStatus(edge)).workloads.find((x) => x.name === 'roll');
      out[sites[i]!] = w?.status?.state === 'Running' ? w.generation : undefined;
    }
    return out;
  };
  const edgectl = (args: string[]) => runToEnd('edgectl', args, { EF_SERVER: cloud.url, EF_TOKEN: cloud.token });

  beforeAll(async () => {
    cloud = await fleet.startCloud({ extra: ['--rollout-tick-ms', '200'] });
    for (const [i, site] of sites.entries()) {
      const node = `roll-${i + 1}`;
      edges.push(await fleet.startEdge({ node, cloudUrl: cloud.url, joinToken: await api(cloud).token(node) }));
      expect((await api(cloud).call('PATCH', `/nodes/${node}`, { metadata: { labels: { site } } })).status).toBe(200);
    }
  }, 120_000);
  afterAll(() => fleet.cleanup());

  it('rolls v2 out in two waves: the canary first, the rest after approval', async () => {
    expect((await api(cloud).call('POST', '/apps', app('v1'))).status).toBe(201);
    await until('revision 1 on every node', (r) => r.status.phase === 'Succeeded' && r.status.counts.healthy === 3);
    expect(await running()).toEqual({ s1: 1, s2: 1, s3: 1 });

    // The effective spec per group: one group per site, each with its own marker.
    const shown = await edgectl(['get', 'app', 'roll', '-o', 'yaml']);
    expect(shown.code).toBe(0);
    const groups = (YAML.parse(shown.out) as { status: { groups: { variants: string[]; template: { env: { MARKER: string } } }[] } }).status.groups;
    expect(groups.filter((g) => g.variants.length === 1).map((g) => g.template.env.MARKER).sort()).toEqual(sites.map(marker));

    expect((await api(cloud).call('PUT', '/apps/roll', app('v2'))).status).toBe(200);
    const gate = await until('the canary wave to pass', (r) => r.status.phase === 'AwaitingApproval' && r.status.revision === 2);
    expect(gate.status.waves.map((w) => [w.size, w.counts.healthy, w.state])).toEqual([[1, 1, 'Passed'], [2, 0, 'AwaitingApproval']]);
    const afterCanary = await running();
    expect(Object.values(afterCanary).sort()).toEqual([1, 1, 2]);
    canary = Object.entries(afterCanary).find(([, g]) => g === 2)![0];

    const approved = await edgectl(['rollout', 'approve', 'roll']);
    expect(approved.code, approved.err).toBe(0);
    const followed = await edgectl(['rollout', 'status', 'roll', '-w']);
    expect(followed.code, followed.err).toBe(0);
    expect(followed.out).toMatch(/Phase:\s+Succeeded/);
    await waitFor('v2 Running everywhere', async () => Object.values(await running()).every((g) => g === 2), 60_000);
    for (const site of sites) expect(markerText(site)).toContain('started v2');

    const history = await edgectl(['rollout', 'history', 'roll']);
    expect(history.out).toMatch(/2\s+\S+\s+current/);
  }, 180_000);

  it('a version that crashes on the canary is rolled back there and never reaches the others', async () => {
    expect((await api(cloud).call('PUT', '/apps/roll', app('v3', true))).status).toBe(200);
    const rolledBack = await until('the threshold to trip and roll back', (r) => r.status.phase === 'RolledBack');
    expect(rolledBack.status).toMatchObject({ revision: 2, stableRevision: 2, badRevisions: [3] });
    await waitFor('v2 Running everywhere again', async () => Object.values(await running()).every((g) => g === 2), 60_000);
    expect(markerText(canary)).toContain('started v3');
    for (const site of sites.filter((s) => s !== canary)) expect(markerText(site)).not.toContain('v3');

    const events = (await api(cloud).call<{ items: { spec: { reason: string } }[] }>('GET', '/apps/roll/rollout/events')).body.items.map((e) => e.spec.reason);
    expect(events).toEqual(expect.arrayContaining(['WaveStarted', 'WavePassed', 'AwaitingApproval', 'WaveApproved', 'RolloutSucceeded', 'ThresholdTripped', 'RolledBack']));
  }, 180_000);
});
