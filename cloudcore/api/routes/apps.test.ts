import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppSchema, type App, type Workload } from '../../../protocol/index.js';
import { startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';

const appBody = (name: string, command = '/bin/sleep') => ({
  metadata: { name, labels: { tier: 'web' } },
  spec: {
    selector: { matchLabels: { env: 'prod' } },
    template: { runtime: 'process', command, args: ['60'] },
  },
});

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const parseApp = (body: unknown): App => AppSchema.parse(body);

describe('apps API', () => {
  let api: TestApi;
  beforeAll(async () => { api = await startTestApi(); });
  afterAll(async () => { await api.close(); });

  it('creates, reads, replaces and deletes an app', async () => {
    const created = await api.call('POST', '/apps', { body: appBody('shop') });
    expect(created.status).toBe(201);
    const app = parseApp(created.body);
    expect(app.kind).toBe('App');
    expect(app.metadata).toMatchObject({ name: 'shop', generation: 1, labels: { tier: 'web' } });
    expect(app.spec.template).toMatchObject({ command: '/bin/sleep', restartPolicy: 'Always', env: {} });

    const read = parseApp((await api.call('GET', '/apps/shop')).body);
    expect(read.status?.nodes).toEqual([]);
    // The effective spec per group of nodes; with no variants, just the base template.
    expect(read.status?.groups).toEqual([{ variants: [], nodes: [], replicas: 1, template: read.spec.template }]);

    const replaced = await api.call('PUT', '/apps/shop', { body: appBody('shop', '/bin/cat') });
    expect(replaced.status).toBe(200);
    const after = parseApp(replaced.body);
    expect(after.metadata.generation).toBe(2);
    expect(after.metadata.uid).toBe(app.metadata.uid);
    expect(after.spec.template.command).toBe('/bin/cat');

    const list = await api.call('GET', '/apps');
    expect(list.body).toMatchObject({ items: [{ metadata: { name: 'shop' } }], resourceVersion: after.metadata.resourceVersion });

    const deleted = await api.call('DELETE', '/apps/shop');
    expect(deleted.status).toBe(200);
    expect(parseApp(deleted.body).metadata.name).toBe('shop');
    expect((await api.call('GET', '/apps/shop')).status).toBe(404);
    expect((await api.call('DELETE', '/apps/shop')).status).toBe(404);
    expect((await api.call('PUT', '/apps/shop', { body: appBody('shop') })).status).toBe(404);
  });

  it('refuses a duplicate create with 409', async () => {
    expect((await api.call('POST', '/apps', { body: appBody('dup') })).status).toBe(201);
    const again = await api.call('POST', '/apps', { body: appBody('dup', '/bin/other') });
    expect(again.status).toBe(409);
    expect((await api.store.get('App', 'dup'))?.spec.template.command).toBe('/bin/sleep');
  });

  it('refuses a PUT carrying a stale resourceVersion with 409 and keeps the stored app', async () => {
    const v1 = parseApp((await api.call('POST', '/apps', { body: appBody('occ') })).body);
    const first = { ...appBody('occ', '/bin/one'), metadata: { ...appBody('occ').metadata, resourceVersion: v1.metadata.resourceVersion } };
    expect((await api.call('PUT', '/apps/occ', { body: first })).status).toBe(200);
    const stale = { ...appBody('occ', '/bin/two'), metadata: { ...appBody('occ').metadata, resourceVersion: v1.metadata.resourceVersion } };
    const res = await api.call('PUT', '/apps/occ', { body: stale });
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ error: expect.any(String), code: 'EF_CONFLICT' });
    expect((await api.store.get('App', 'occ'))?.spec.template.command).toBe('/bin/one');
  });

  it('ignores client-sent status, uid, creationTimestamp and generation', async () => {
    const body = {
      kind: 'App',
      metadata: { name: 'sneaky', uid: 'mine', creationTimestamp: '1999-01-01T00:00:00Z', generation: 42 },
      spec: appBody('x').spec,
      status: { nodes: [{ node: 'fake', state: 'Running', restarts: 0 }] },
    };
    const app = parseApp((await api.call('POST', '/apps', { body })).body);
    expect(app.metadata.uid).not.toBe('mine');
    expect(app.metadata.generation).toBe(1);
    expect(app.metadata.creationTimestamp).not.toBe('1999-01-01T00:00:00Z');
    expect(app.status).toBeUndefined();
    const put = parseApp((await api.call('PUT', '/apps/sneaky', { body: { ...body, metadata: { ...body.metadata, generation: 7 } } })).body);
    expect(put.metadata.generation).toBe(1); // spec unchanged: no bump, and never the client's number
    expect(put.metadata.uid).toBe(app.metadata.uid);
    expect((await api.store.get('App', 'sneaky'))?.status).toBeUndefined();
  });

  it('refuses a PUT whose body names another app, naming metadata.name', async () => {
    const res = await api.call('PUT', '/apps/left', { body: appBody('right') });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ field: 'metadata.name' });
  });

  it.each([
    ['missing command', { metadata: { name: 'bad' }, spec: { template: { runtime: 'process' } } }, 'spec.template.command', 'is required'],
    ['bad name', { ...appBody('Bad_Name') }, 'metadata.name', 'lowercase'],
    ['dotted name (its workload demo.x.edge-1 would be app demo on node x.edge-1)', { ...appBody('demo.x') }, 'metadata.name', 'cannot contain "."'],
    ['bad restartPolicy', { metadata: { name: 'bad' }, spec: { template: { runtime: 'process', command: 'x', restartPolicy: 'Sometimes' } } }, 'spec.template.restartPolicy', ''],
    ['bad selector operator', { metadata: { name: 'bad' }, spec: { selector: { matchExpressions: [{ key: 'a', operator: 'Like' }] }, template: { runtime: 'process', command: 'x' } } }, 'spec.selector.matchExpressions.0.operator', ''],
    ['In without values', { metadata: { name: 'bad' }, spec: { selector: { matchExpressions: [{ key: 'a', operator: 'In' }] }, template: { runtime: 'process', command: 'x' } } }, 'spec.selector.matchExpressions.0.values', 'at least one value'],
    ['unknown runtime', { metadata: { name: 'bad' }, spec: { template: { runtime: 'docker', command: 'x' } } }, 'spec.template.runtime', ''],
    ['unknown field', { ...appBody('bad'), replicas: 3 }, 'replicas', 'unknown field'],
    ['bad label', { metadata: { name: 'bad', labels: { 'not ok': 'v' } }, spec: appBody('x').spec }, 'metadata.labels.not ok', 'label key'],
    ['bad kind', { ...appBody('bad'), kind: 'Workload' }, 'kind', ''],
  ])('refuses an app with %s, naming %s, and stores nothing', async (_case, body, field, words) => {
    const before = await api.store.revision();
    const res = await api.call('POST', '/apps', { body });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: expect.stringMatching(new RegExp(`^${escapeRegExp(field)}: .*${escapeRegExp(words)}`)), field, code: 'EF_INVALID' });
    expect(await api.store.revision()).toBe(before);
    const put = await api.call('PUT', `/apps/${body.metadata.name}`, { body });
    expect(put.status).toBe(400);
    expect(await api.store.revision()).toBe(before);
  });

  it('refuses a body that is not an object', async () => {
    const res = await api.call('POST', '/apps', { body: [1, 2] });
    expect(res).toMatchObject({ status: 400, body: { error: 'request body must be a JSON object' } });
    const none = await api.call('POST', '/apps');
    expect(none.status).toBe(400);
  });

  it('filters the list by labelSelector', async () => {
    const make = async (name: string, labels: Record<string, string>) =>
      api.call('POST', '/apps', { body: { ...appBody(name), metadata: { name, labels } } });
    await make('sel-a', { team: 'red', stage: 'prod' });
    await make('sel-b', { team: 'blue', stage: 'prod' });
    await make('sel-c', { team: 'red', stage: 'dev' });
    const names = async (selector: string) => {
      const res = await api.call('GET', `/apps?labelSelector=${encodeURIComponent(selector)}`);
      expect(res.status).toBe(200);
      const items = (res.body as { items: App[] }).items;
      return items.map((a) => a.metadata.name).sort();
    };
    expect(await names('team=red')).toEqual(['sel-a', 'sel-c']);
    expect(await names('team=red,stage!=dev')).toEqual(['sel-a']);
    expect(await names('team in (red,blue),stage=prod')).toEqual(['sel-a', 'sel-b']);
    expect(await names('team,!stage')).toEqual([]);
  });

  it('aggregates status.nodes from the app\'s Workloads', async () => {
    const app = parseApp((await api.call('POST', '/apps', { body: appBody('agg') })).body);
    const workload = (node: string, appName: string, status?: Workload['status']): Workload => ({
      kind: 'Workload',
      metadata: { name: `${appName}.${node}` },
      spec: { nodeName: node, app: appName, generation: 1, template: app.spec.template },
      ...(status ? { status } : {}),
    });
    const observedAt = new Date().toISOString();
    await api.store.create(workload('edge-b', 'agg', { state: 'CrashLoop', restarts: 4, lastError: 'exit code 1', generation: 1, observedAt }));
    await api.store.create(workload('edge-a', 'agg', { state: 'Running', restarts: 0, lastError: null, generation: 1, observedAt }));
    await api.store.create(workload('edge-c', 'agg'));
    await api.store.create(workload('edge-a', 'other'));
    const res = parseApp((await api.call('GET', '/apps/agg')).body);
    expect(res.status?.nodes).toEqual([
      { node: 'edge-a', state: 'Running', restarts: 0, generation: 1 },
      { node: 'edge-b', state: 'CrashLoop', restarts: 4, lastError: 'exit code 1', generation: 1 },
      { node: 'edge-c', state: 'Pending', restarts: 0 },
    ]);
    const workloads = await api.call('GET', '/workloads?app=agg&node=edge-b');
    expect((workloads.body as { items: Workload[] }).items.map((w) => w.metadata.name)).toEqual(['agg.edge-b']);
  });
});
