import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentUpgradeSchema, type AgentUpgrade, type AgentUpgradePhase, type Node } from '../../../protocol/index.js';
import { updateNodeStatus } from '../../store/readModifyWrite.js';
import { AgentUpgradeController } from '../../controllers/agentUpgradeController.js';
import { runCli } from '../../../test/helpers/edgectl/runCli.js';
import { ADMIN_TOKEN, READONLY_TOKEN, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';
import { waitFor } from '../../../test/helpers/wait.js';

/**
 * The agent-upgrade API and `edgectl upgrade` with the real upgrade controller on the same
 * store. No edges run here (test/upgrade/ has real ones): the test writes what each node's
 * agent reports the way the hub does after an `agentStatus` frame.
 */

describe('agent upgrades API and edgectl upgrade', () => {
  let api: TestApi;
  let controller: AgentUpgradeController;
  let home: string;
  const log = pino({ level: 'silent' });
  const cli = (...args: string[]) => runCli(args, { origin: api.origin, token: ADMIN_TOKEN, homeDir: home });

  const joinedNode = async (name: string, zone: string, version = '0.1.0') => {
    const node: Node = {
      kind: 'Node', metadata: { name, labels: { zone } }, spec: {},
      status: { phase: 'Ready', since: new Date().toISOString(), lastSeen: new Date().toISOString(), epoch: 'e1', ackedRevision: 0, agent: { version, os: 'linux', arch: 'x64', hostname: name } },
    };
    await api.store.create(node);
  };
  /** Plays each edge: whatever its spec.agent asks, the attempt ends in `outcome(node)`. */
  const edgesAct = async (outcome: (node: string) => AgentUpgradePhase = () => 'Committed') => {
    for (const n of (await api.store.list('Node')).items) {
      const want = n.spec.agent;
      const agent = n.status.agent!;
      if (!want || want.version === agent.version || agent.upgrade?.revision === want.revision) continue;
      const phase = outcome(n.metadata.name);
      await updateNodeStatus(api.store, n.metadata.name, (cur) => ({
        ...cur.status,
        agent: {
          ...agent, version: phase === 'Committed' ? want.version : agent.version,
          upgrade: { upgrade: want.upgrade, revision: want.revision, version: want.version, previousVersion: agent.version, phase, message: phase === 'RolledBack' ? 'the new agent exited with code 1 at start' : 'ok', since: new Date().toISOString() },
        },
      }));
    }
  };
  const until = (name: string, what: string, ok: (u: AgentUpgrade) => boolean, outcome?: (node: string) => AgentUpgradePhase) =>
    waitFor(what, async () => {
      await edgesAct(outcome);
      const res = await api.call('GET', `/agent-upgrades/${name}`);
      if (res.status !== 200) return undefined;
      const u = AgentUpgradeSchema.parse(res.body);
      return u.status && ok(u) ? u : undefined;
    }, 20_000);

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'edgefleet-upgrade-cli-'));
    api = await startTestApi({ agentVersions: () => ['0.1.0', '0.2.0', '0.3.0'] });
    // A tick wider than the passes: counts-only changes are deferred to the next tick, as under load.
    controller = new AgentUpgradeController(api.store, log, { tickMs: 2000, batchMs: 20 });
    await controller.start();
    for (const [n, zone] of [['n1', 'north'], ['n2', 'north'], ['n3', 'north'], ['s1', 'south']] as const) await joinedNode(n, zone);
  });
  afterAll(async () => {
    await controller?.stop();
    await api?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('refuses a version cloudcore does not serve, a bad version and a bad strategy, naming the field, and stores nothing', async () => {
    const unknown = await cli('upgrade', '--to', '9.9.9');
    expect(unknown.code).not.toBe(0);
    expect(unknown.err).toMatch(/version "9\.9\.9" is not in cloudcore's dist directory \(it serves: 0\.1\.0, 0\.2\.0, 0\.3\.0\)/);
    const bad = await api.call('POST', '/agent-upgrades', { body: { version: '../../etc' } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/version/);
    const waves = await cli('upgrade', '--to', '0.2.0', '--waves', '1,50%');
    expect(waves.code).not.toBe(0);
    expect(waves.err).toMatch(/the last wave must be \{percent: 100\}/);
    const readonly = await api.call('POST', '/agent-upgrades', { body: { version: '0.2.0' }, token: READONLY_TOKEN });
    expect(readonly.status).toBe(403);
    expect((await api.store.list('AgentUpgrade')).items).toHaveLength(0);
  });

  it('edgectl upgrade --to --selector rolls the version out in waves; status shows each node', async () => {
    const started = await cli('upgrade', '--to', '0.2.0', '--selector', 'zone=north', '--name', 'north', '--waves', '1,100%');
    expect(started.err).toBe('');
    expect(started.out).toMatch(/agentupgrade\/north: version 0\.2\.0/);
    // Wave 1 holds one node until it reports; nothing else is told yet.
    const first = await waitFor('one node told 0.2.0', async () => {
      const told = (await api.store.list('Node')).items.filter((n) => n.spec.agent?.version === '0.2.0');
      return told.length > 0 ? told : undefined;
    });
    expect(first).toHaveLength(1);
    const done = await until('north', 'north upgraded', (u) => u.status!.phase === 'Succeeded');
    expect(done.status!.counts.healthy).toBe(3);
    const nodes = (await api.store.list('Node')).items;
    expect(nodes.filter((n) => n.status.agent!.version === '0.2.0').map((n) => n.metadata.name).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(nodes.find((n) => n.metadata.name === 's1')!.spec.agent).toBeUndefined();
    const status = await cli('upgrade', 'status', 'north');
    expect(status.out).toMatch(/Upgrade: +north\nPhase: +Succeeded/);
    expect(status.out).toMatch(/n1\s+Ready\s+0\.2\.0\s+0\.2\.0\s+Committed \(r2\)/);
    const events = (await api.store.list('Event')).items.filter((e) => e.spec.upgrade === 'north').map((e) => e.spec.reason);
    expect(events).toEqual(expect.arrayContaining(['RolloutStarted', 'WavePassed', 'RolloutSucceeded']));
  });

  it('a node that rolls back trips the threshold in the first wave; the rest are never told; commands act on the status', async () => {
    const res = await api.call('POST', '/agent-upgrades', { body: { name: 'north', version: '0.3.0', selector: { matchLabels: { zone: 'north' } }, strategy: { type: 'waves', waves: [{ count: 1 }, { percent: 100 }] } } });
    expect(res.status).toBe(200);
    const failed = await until('north', 'north failed', (u) => u.status!.phase === 'Failed', () => 'RolledBack');
    expect(failed.status!.revision).toBe(3);
    expect(failed.status!.counts.failed).toBe(1);
    const told = (await api.store.list('Node')).items.filter((n) => n.spec.agent?.version === '0.3.0');
    expect(told).toHaveLength(1);
    // A second upgrade over the same nodes is allowed now that this one ended…
    const abort = await cli('upgrade', 'abort', 'north');
    expect(abort.err).toMatch(/cannot abort the rollout of agent upgrade "north": it is Failed already/);
    const rollback = await cli('upgrade', 'rollback', 'north', '--to-revision', '1');
    expect(rollback.out).toMatch(/RolledBack/);
    const back = await until('north', 'north back to the baseline', (u) => u.status!.phase === 'RolledBack' && u.status!.counts.healthy === 3);
    expect(back.status!.revision).toBe(1);
    const specs = (await api.store.list('Node')).items.filter((n) => n.metadata.labels?.zone === 'north').map((n) => n.spec.agent!.version);
    expect(specs).toEqual(['0.1.0', '0.1.0', '0.1.0']);
  });

  it('an upgrade over nodes another active upgrade holds is refused (409 naming it); a running one cannot be deleted', async () => {
    const all = await api.call('POST', '/agent-upgrades', { body: { name: 'everyone', version: '0.2.0', strategy: { type: 'waves', waves: [{ count: 1, approval: false }, { percent: 100, approval: true }] } } });
    expect(all.status).toBe(201);
    await until('everyone', 'everyone awaits approval', (u) => u.status!.phase === 'AwaitingApproval');
    const south = await api.call('POST', '/agent-upgrades', { body: { name: 'south', version: '0.3.0', selector: { matchLabels: { zone: 'south' } } } });
    expect(south.status).toBe(409);
    expect((south.body as { error: string; field: string }).error).toMatch(/still being upgraded by another upgrade: "everyone" \(s1\)/);
    expect((south.body as { field: string }).field).toBe('selector');
    const del = await api.call('DELETE', '/agent-upgrades/everyone');
    expect(del.status).toBe(409);
    const approve = await cli('upgrade', 'approve', 'everyone');
    expect(approve.code).toBe(0);
    await until('everyone', 'everyone done', (u) => u.status!.phase === 'Succeeded');
    expect((await api.call('DELETE', '/agent-upgrades/everyone')).status).toBe(200);
    const list = await cli('upgrade', 'list');
    expect(list.out).toMatch(/north\s+0\.3\.0\s+RolledBack/);
  });
});
