import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../test/helpers/cloudcore/testServer.js';
import { RolloutController } from '../cloudcore/controllers/rolloutController.js';
import { reportRunning } from '../test/helpers/cloudcore/rolloutFixtures.js';
import { Scheduler } from '../cloudcore/controllers/scheduler.js';
import type { Rollout } from '../protocol/index.js';
import { waitFor } from '../test/helpers/wait.js';
import { run } from './program.js';

/** edgectl rollout against the real API, scheduler and rollout controller; the test plays the edges. */

const app = (version: string) => ({
  metadata: { name: 'web' },
  spec: {
    selector: {},
    template: { runtime: 'process', command: '/bin/sleep', args: ['60'], env: { VERSION: version } },
    strategy: { type: 'waves', waves: [{ count: 1 }, { percent: 50, approval: true }, { percent: 100 }] },
  },
});

describe('edgectl rollout', () => {
  let api: TestApi;
  let scheduler: Scheduler;
  let controller: RolloutController;
  let edges: NodeJS.Timeout;

  const cli = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await run(args, { stdout: (s) => { out += s; }, stderr: (s) => { err += s; }, env: { EF_SERVER: api.origin, EF_TOKEN: 'admin-token-for-tests' }, homeDir: '/nonexistent' });
    return { code, out, err };
  };
  const phase = async () => ((await api.call('GET', '/apps/web/rollout')).body as Rollout).status;

  beforeAll(async () => {
    api = await startTestApi();
    for (let i = 0; i < 4; i++) {
      await api.store.create({ kind: 'Node', metadata: { name: `n${i}` }, spec: {}, status: { phase: 'Ready', since: '', lastSeen: new Date().toISOString(), epoch: 'e', ackedRevision: 0, agent: null } });
    }
    const log = pino({ level: 'silent' });
    scheduler = new Scheduler(api.store, log);
    controller = new RolloutController(api.store, log, { tickMs: 50 });
    await scheduler.start();
    await controller.start();
    // The edges: whatever a workload is given, it runs.
    edges = setInterval(() => { void reportRunning(api.store).catch(() => undefined); }, 50);
  });
  afterAll(async () => {
    clearInterval(edges);
    await controller.stop();
    await scheduler.stop();
    await api.close();
  });

  it('shows status and history, approves, and follows with -w until the end', async () => {
    expect((await api.call('POST', '/apps', { body: app('v1') })).status).toBe(201);
    await waitFor('revision 1 to succeed', async () => (await phase()).phase === 'Succeeded');
    expect((await api.call('PUT', '/apps/web', { body: app('v2') })).status).toBe(200);
    await waitFor('the approval gate', async () => (await phase()).phase === 'AwaitingApproval');

    const status = await cli(['rollout', 'status', 'web']);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/Phase:\s+AwaitingApproval/);
    expect(status.out).toMatch(/Stable:\s+1/);
    expect(status.out).toMatch(/\[#+\.+\] 1\/4 healthy/);
    expect(status.out).toMatch(/WAVE\s+TARGET\s+SIZE\s+STATE\s+APPROVAL\s+PENDING\s+UPDATING\s+HEALTHY\s+FAILED\s+OFFLINE/);
    expect(status.out).toMatch(/\n2\s+2\s+1\s+AwaitingApproval\s+required/);

    const wrong = await cli(['rollout', 'resume', 'web']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/cannot resume the rollout of app "web": it is AwaitingApproval, not Paused/);

    const following = cli(['rollout', 'status', 'web', '-w']);
    const approved = await cli(['rollout', 'approve', 'web']);
    expect(approved.code).toBe(0);
    expect(approved.out).toMatch(/rollout of web: Progressing \(revision 2\)/);
    const followed = await following;
    expect(followed.code).toBe(0);
    expect(followed.out).toMatch(/Phase:\s+Succeeded/);
    expect(followed.out).toMatch(/4\/4 healthy/);

    const history = await cli(['rollout', 'history', 'web']);
    expect(history.out).toMatch(/REVISION\s+AGE\s+ROLE\s+VARIANTS\s+TEMPLATE/);
    expect(history.out).toMatch(/1\s+\S+\s+-\s+-\s+process: \/bin\/sleep 60 \(env: VERSION=v1\)/);
    expect(history.out).toMatch(/2\s+\S+\s+current/);
  });

  it('pauses, resumes, aborts and rolls back', async () => {
    expect((await api.call('PUT', '/apps/web', { body: app('v3') })).status).toBe(200);
    await waitFor('the approval gate', async () => (await phase()).phase === 'AwaitingApproval' && (await phase()).revision === 3);
    expect((await cli(['rollout', 'pause', 'web'])).out).toMatch(/Paused/);
    expect((await cli(['rollout', 'resume', 'web'])).code).toBe(0);
    const aborted = await cli(['rollout', 'abort', 'web', '-o', 'json']);
    expect(JSON.parse(aborted.out)).toMatchObject({ kind: 'Rollout', status: { phase: 'Aborted' } });
    const watchAborted = await cli(['rollout', 'status', 'web', '-w']);
    expect(watchAborted.code).toBe(1);

    const badFlag = await cli(['rollout', 'rollback', 'web', '--to-revision', 'two']);
    expect(badFlag.code).not.toBe(0);
    expect(badFlag.err).toMatch(/invalid --to-revision "two"/);
    const missing = await cli(['rollout', 'rollback', 'web']);
    expect(missing.err).toMatch(/--to-revision/);
    const back = await cli(['rollout', 'rollback', 'web', '--to-revision', '1']);
    expect(back.code).toBe(0);
    expect(back.out).toMatch(/RolledBack \(revision 1\)/);
    await waitFor('every workload on revision 1', async () => (await api.store.list('Workload')).items.every((w) => w.spec.generation === 1));
    const history = await cli(['rollout', 'history', 'web']);
    expect(history.out).toMatch(/3\s+\S+\s+bad \(rolled back\)/);
  });

  it('after a rollback the app says what its nodes run, and makes no new revision for it', async () => {
    // The previous test rolled back from 3 to 1: the App takes revision 1's template (a new generation).
    const template = async () => (JSON.parse((await cli(['get', 'app', 'web', '-o', 'json'])).out) as { spec: { template: { env: Record<string, string> } } }).spec.template;
    await waitFor("the app's template back to v1", async () => (await template()).env.VERSION === 'v1');
    const shown = await cli(['get', 'app', 'web']);
    expect(shown.out).toMatch(/Revision:\s+1\b/);
    await waitFor('every node ready on revision 1', async () => /Nodes ready:\s+4\/4/.test((await cli(['get', 'app', 'web'])).out));
    expect((await cli(['get', 'apps'])).out).toMatch(/web\s+\S+\s+4\/4/);
    const revisions = (await api.call('GET', '/apps/web/revisions')).body as { items: Array<{ spec: { revision: number } }> };
    expect(revisions.items.map((r) => r.spec.revision)).toEqual([1, 2, 3]);
    expect((await phase()).phase).toBe('RolledBack');
    await waitFor('rollout status to count every node healthy on 1', async () => /4\/4 healthy/.test((await cli(['rollout', 'status', 'web'])).out));
    const status = await cli(['rollout', 'status', 'web']);
    expect(status.out).toMatch(/Revision:\s+1/);
    expect(status.out).toMatch(/Wave:\s+2 of 3/);
    expect(status.out).not.toMatch(/of 0-/);

    // An edit after the rollback is a new revision that rolls out.
    expect((await api.call('PUT', '/apps/web', { body: app('v4') })).status).toBe(200);
    await waitFor('a new revision', async () => (await phase()).revision > 3);
  });

  it('answers approve with the state after it, numbers waves from 1 and follows -w without repeats', async () => {
    await waitFor('the approval gate', async () => (await phase()).phase === 'AwaitingApproval');
    const status = await cli(['rollout', 'status', 'web']);
    expect(status.out).toMatch(/Wave:\s+2 of 3/);
    expect(status.out).toMatch(/\n2\s+2\s+1\s+AwaitingApproval\s+required/);
    let watched = '';
    const following = run(['rollout', 'status', 'web', '-w'], { stdout: (s) => { watched += s; }, stderr: () => undefined, env: { EF_SERVER: api.origin, EF_TOKEN: 'admin-token-for-tests' }, homeDir: '/nonexistent' });
    await waitFor('the first status block', async () => watched.includes('OFFLINE'));
    const approved = await cli(['rollout', 'approve', 'web']);
    expect(approved.out).toMatch(/Progressing/);
    expect(approved.out).not.toMatch(/waits for approval/);
    expect(await following).toBe(0);
    expect(watched).toMatch(/Phase:\s+Succeeded/);
    const blocks = watched.split(/\n(?=App:)/).map((b) => b.replace(/Started:.*\n/, ''));
    for (let i = 1; i < blocks.length; i++) expect(blocks[i]).not.toBe(blocks[i - 1]);
  });
});
