import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RolloutSchema, type Event, type Rollout } from '../../../protocol/index.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { RolloutController } from '../../controllers/rolloutController.js';
import { Scheduler } from '../../controllers/scheduler.js';
import { reportRunning } from '../../../test/helpers/cloudcore/rolloutFixtures.js';
import { NdjsonReader, READONLY_TOKEN, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

/**
 * The rollout API with the real scheduler and rollout controller on the same store. No edges
 * run here: the test writes workload status the way the hub would after an edge reported.
 */

const appBody = (version: string) => ({
  metadata: { name: 'web' },
  spec: {
    selector: { matchLabels: { role: 'web' } },
    template: { runtime: 'process', command: '/bin/sleep', args: ['60'], env: { VERSION: version } },
    strategy: { type: 'waves', waves: [{ count: 1 }, { percent: 100, approval: true }] },
  },
});

describe('rollouts API', () => {
  let api: TestApi;
  let scheduler: Scheduler;
  let controller: RolloutController;
  const log = pino({ level: 'silent' });

  const rollout = async () => RolloutSchema.parse((await api.call('GET', '/apps/web/rollout')).body);
  /** Plays the edges: every web workload reports Running on the revision it was given. */
  const edgesReport = () => reportRunning(api.store);
  const until = async (what: string, ok: (r: Rollout) => boolean): Promise<Rollout> =>
    waitFor(what, async () => {
      await edgesReport();
      const res = await api.call('GET', '/apps/web/rollout');
      if (res.status !== 200) return undefined;
      const r = RolloutSchema.parse(res.body);
      return ok(r) ? r : undefined;
    });

  beforeAll(async () => {
    api = await startTestApi();
    for (const name of ['n1', 'n2', 'n3']) {
      await api.store.create({
        kind: 'Node', metadata: { name, labels: { role: 'web' } }, spec: {},
        status: { phase: 'Ready', since: new Date().toISOString(), lastSeen: new Date().toISOString(), epoch: 'e', ackedRevision: 0, agent: null },
      });
    }
    scheduler = new Scheduler(api.store, log);
    controller = new RolloutController(api.store, log, { tickMs: 50 });
    await scheduler.start();
    await controller.start();
  });
  afterAll(async () => {
    await controller.stop();
    await scheduler.stop();
    await api.close();
  });

  it('answers 404 for an app without a rollout', async () => {
    const res = await api.call('GET', '/apps/nope/rollout');
    expect(res.status).toBe(404);
    expect((await api.call('GET', '/apps/nope/revisions')).status).toBe(404);
  });

  it('rolls out, waits for approval, and takes operator commands', async () => {
    expect((await api.call('POST', '/apps', { body: appBody('v1') })).status).toBe(201);
    await until('revision 1 everywhere', (r) => r.status.phase === 'Succeeded' && r.status.stableRevision === 1);

    expect((await api.call('PUT', '/apps/web', { body: appBody('v2') })).status).toBe(200);
    const awaiting = await until('the canary wave to pass', (r) => r.status.phase === 'AwaitingApproval');
    expect(awaiting.status).toMatchObject({ revision: 2, stableRevision: 1, wave: 1 });
    expect(awaiting.status.waves.map((w) => [w.target, w.state])).toEqual([[1, 'Passed'], [3, 'AwaitingApproval']]);

    const revisions = (await api.call('GET', '/apps/web/revisions')).body as { items: { spec: { revision: number; template: { env: Record<string, string> } } }[] };
    expect(revisions.items.map((r) => [r.spec.revision, r.spec.template.env['VERSION']])).toEqual([[1, 'v1'], [2, 'v2']]);

    // Wrong states answer 409 with the reason; bad bodies 400 naming the field; readonly 403.
    const resume = await api.call('POST', '/apps/web/rollout/resume', { body: {} });
    expect(resume.status).toBe(409);
    expect((resume.body as { error: string }).error).toMatch(/it is AwaitingApproval, not Paused/);
    const noTarget = await api.call('POST', '/apps/web/rollout/rollback', { body: {} });
    expect(noTarget).toMatchObject({ status: 400, body: { field: 'toRevision' } });
    expect((await api.call('POST', '/apps/web/rollout/rollback', { body: { toRevision: 42 } })).status).toBe(404);
    expect((await api.call('POST', '/apps/web/rollout/approve', { body: {}, token: READONLY_TOKEN })).status).toBe(403);
    expect((await api.call('POST', '/apps/web/rollout/approve', { body: { wave: 7 } })).status).toBe(409);

    const paused = await api.call('POST', '/apps/web/rollout/pause');
    expect(paused.status).toBe(200);
    expect(RolloutSchema.parse(paused.body).status.phase).toBe('Paused');
    expect((await api.call('POST', '/apps/web/rollout/resume', { body: {} })).status).toBe(200);

    const approved = await api.call('POST', '/apps/web/rollout/approve', { body: { wave: 1 } });
    expect(approved.status).toBe(200);
    await until('revision 2 everywhere', (r) => r.status.phase === 'Succeeded' && r.status.stableRevision === 2);
    const again = await api.call('POST', '/apps/web/rollout/approve', { body: {} });
    expect((again.body as { error: string }).error).toMatch(/it is Succeeded; there is nothing to approve/);

    const rolledBack = await api.call('POST', '/apps/web/rollout/rollback', { body: { toRevision: 1 } });
    expect(rolledBack.status).toBe(200);
    expect(RolloutSchema.parse(rolledBack.body).status).toMatchObject({ phase: 'RolledBack', revision: 1, badRevisions: [2] });
    await waitFor('every workload back on revision 1', async () =>
      (await api.store.list('Workload')).items.every((w) => w.spec.generation === 1));

    const events = (await api.call('GET', '/apps/web/rollout/events')).body as { items: Event[] };
    const reasons = events.items.map((e) => e.spec.reason);
    expect(reasons).toEqual(expect.arrayContaining(['RolloutStarted', 'WavePassed', 'AwaitingApproval', 'RolloutPaused', 'WaveApproved', 'RolloutSucceeded', 'RolledBack']));
    const all = (await api.call('GET', '/events')).body as { items: Event[] };
    expect(all.items.some((e) => e.spec.app === 'web' && e.spec.reason === 'RolloutSucceeded')).toBe(true);
  });

  it('lists and watches rollouts', async () => {
    const list = (await api.call('GET', '/rollouts')).body as { items: Rollout[] };
    expect(list.items.map((r) => r.metadata.name)).toEqual(['web']);
    const abort = new AbortController();
    try {
      const reader = new NdjsonReader(await api.stream('/rollouts?watch=true', abort.signal));
      const first = (await reader.next()) as { type: string; object: Rollout };
      expect(first).toMatchObject({ type: 'ADDED', object: { kind: 'Rollout', metadata: { name: 'web' } } });
      await waitFor("the app's spec back to revision 1's", async () => ((await api.call('GET', '/apps/web')).body as { spec: { template: { env: Record<string, string> } } }).spec.template.env.VERSION === 'v1');
      expect((await api.call('PUT', '/apps/web', { body: appBody('v3') })).status).toBe(200);
      // The rollback above gave the App revision 1's spec (generation 3), so v3 is revision 4.
      const seen = await waitFor('a watch line for revision 4', async () => {
        const line = (await reader.next()) as { type: string; object: Rollout };
        return line.object.status.revision === 4 ? line : undefined;
      });
      expect(seen.type).toBe('MODIFIED');
    } finally {
      abort.abort();
    }
    expect(await rollout()).toMatchObject({ status: { revision: 4 } });
  });

  it('shows the effective spec per group on GET /apps/{name}', async () => {
    const body = appBody('v4');
    const withVariant = { ...body, spec: { ...body.spec, variants: [{ name: 'tuned', selector: { matchLabels: { tuned: 'yes' } }, overrides: { env: { VERSION: 'v4-tuned' }, replicas: 2 } }] } };
    expect((await api.call('PUT', '/apps/web', { body: withVariant })).status).toBe(200);
    await api.call('PATCH', '/nodes/n2', { body: { metadata: { labels: { tuned: 'yes' } } } });
    type AppView = { status: { revision?: number; rollout: { phase: string }; groups: { variants: string[]; nodes: string[]; replicas: number; template: { env: Record<string, string> } }[] } };
    // The revision is made by the rollout controller, which batches changes: wait for it.
    const app = await waitFor('revision 4 of web', async () => {
      const view = (await api.call('GET', '/apps/web')).body as AppView;
      return (view.status.revision ?? 0) >= 4 && view.status.groups.length === 2 ? view : undefined;
    });
    expect(app.status.rollout.phase).toBeDefined();
    expect(app.status.groups.map((g) => [g.variants, g.nodes, g.replicas, g.template.env['VERSION']])).toEqual([
      [[], ['n1', 'n3'], 1, 'v4'], [['tuned'], ['n2'], 2, 'v4-tuned'],
    ]);
  });
});
