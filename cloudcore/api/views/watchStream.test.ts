import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { App, Node, Workload } from '../../../protocol/index.js';
import { eventually, NdjsonReader, startTestApi, type TestApi } from '../../../test/helpers/cloudcore/testServer.js';
import { WatchStreams } from './watchStream.js';

interface Line { type: string; object: { kind: string; metadata: { name: string; resourceVersion?: number } } }
const summary = (line: unknown) => {
  const l = line as Line;
  return `${l.type} ${l.object.metadata.name}`;
};

const appBody = (name: string, command = '/bin/true', labels: Record<string, string> = {}) => ({
  metadata: { name, labels }, spec: { template: { runtime: 'process', command } },
});

describe('watch streams', () => {
  let api: TestApi;
  let watches: WatchStreams | undefined;
  const aborts: AbortController[] = [];
  const open = async (path: string) => {
    const abort = new AbortController();
    aborts.push(abort);
    const res = await api.stream(path, abort.signal);
    return { res, reader: new NdjsonReader(res), abort };
  };

  beforeAll(async () => {
    api = await startTestApi({
      configure: (app, store) => {
        // A bare route over WatchStreams, to observe when a stream lets go of its store watch.
        watches = new WatchStreams(store);
        const streams = watches;
        app.get('/raw-watch', (_request, reply) => streams.serve(reply, { kind: 'App', includes: () => true }));
      },
    });
  });
  afterEach(() => { for (const abort of aborts.splice(0)) abort.abort(); });
  afterAll(async () => { await api.close(); });

  it('streams every app change after a revision, as NDJSON lines as they happen', async () => {
    const from = await api.store.revision();
    await api.call('POST', '/apps', { body: appBody('w-before') }); // after `from`: replayed
    const { res, reader } = await open(`/apps?watch=true&resourceVersion=${from}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    expect(summary(await reader.next())).toBe('ADDED w-before');

    await api.call('POST', '/apps', { body: appBody('w-live') });
    const added = (await reader.next()) as { type: string; object: App };
    expect(added.type).toBe('ADDED');
    expect(added.object.metadata.name).toBe('w-live');
    expect(added.object.metadata.resourceVersion).toBe(await api.store.revision());

    await api.call('PUT', '/apps/w-live', { body: appBody('w-live', '/bin/false') });
    expect(summary(await reader.next())).toBe('MODIFIED w-live');
    await api.call('DELETE', '/apps/w-live');
    expect(summary(await reader.next())).toBe('DELETED w-live');
  });

  it('without resourceVersion, first sends ADDED for what exists, then live changes', async () => {
    await api.call('POST', '/apps', { body: appBody('x-one', '/bin/true', { set: 'x' }) });
    await api.call('POST', '/apps', { body: appBody('x-two', '/bin/true', { set: 'x' }) });
    await api.call('POST', '/apps', { body: appBody('y-one', '/bin/true', { set: 'y' }) });
    const { reader } = await open('/apps?watch=true&labelSelector=set%3Dx');
    expect((await reader.take(2)).map(summary).sort()).toEqual(['ADDED x-one', 'ADDED x-two']);
    await api.call('POST', '/apps', { body: appBody('y-two', '/bin/true', { set: 'y' }) }); // filtered out
    await api.call('POST', '/apps', { body: appBody('x-three', '/bin/true', { set: 'x' }) });
    expect(summary(await reader.next())).toBe('ADDED x-three');
  });

  it('filters nodes by labelSelector, turning label changes into ADDED/DELETED', async () => {
    await api.call('POST', '/tokens', { body: { node: 'wn-1' } });
    const { reader } = await open('/nodes?watch=true&labelSelector=role%3Dgateway');
    const label = (role: string | null) => api.call('PATCH', '/nodes/wn-1', { body: { metadata: { labels: { role } } } });
    await label('gateway');
    expect(summary(await reader.next())).toBe('ADDED wn-1');
    await label('sensor');
    const left = (await reader.next()) as { type: string; object: Node };
    expect(left.type).toBe('DELETED');
    expect(left.object.metadata.labels).toEqual({ role: 'sensor' });
    await api.call('POST', '/tokens', { body: { node: 'wn-2' } }); // not selected: nothing
    await label('gateway');
    expect(summary(await reader.next())).toBe('ADDED wn-1');
  });

  it('filters workloads by node and app', async () => {
    const template = { runtime: 'process' as const, command: '/bin/true', args: [], env: {}, restartPolicy: 'Always' as const, probes: {}, configs: [], secrets: [] };
    const workload = (app: string, node: string): Workload => ({
      kind: 'Workload', metadata: { name: `${app}.${node}` }, spec: { nodeName: node, app, generation: 1, template },
    });
    const from = await api.store.revision();
    const { reader } = await open(`/workloads?watch=true&node=wk-a&app=wk-app&resourceVersion=${from}`);
    await api.store.create(workload('wk-app', 'wk-b'));
    await api.store.create(workload('wk-other', 'wk-a'));
    await api.store.create(workload('wk-app', 'wk-a'));
    expect(summary(await reader.next())).toBe('ADDED wk-app.wk-a');
  });

  it('lets go of the store watch when the client disconnects', async () => {
    const { reader, abort } = await open(`${api.origin}/raw-watch`);
    await api.call('POST', '/apps', { body: appBody('rw-1') });
    await reader.next(); // the stream is live
    expect(watches?.openCount).toBe(1);
    abort.abort();
    await eventually(() => watches?.openCount === 0);
  });

  it('answers 400 for a bad watch query before streaming', async () => {
    const res = await api.call('GET', '/apps?watch=maybe');
    expect(res).toMatchObject({ status: 400, body: { field: 'watch' } });
  });
});

describe('watch edge cases with their own server', () => {
  it('answers 410 with JSON when the revision was compacted', async () => {
    const api = await startTestApi({ store: { maxEvents: 3 } });
    try {
      for (let i = 0; i < 8; i++) await api.call('POST', '/apps', { body: appBody(`c-${i}`) });
      const res = await api.call('GET', '/apps?watch=true&resourceVersion=1');
      expect(res.status).toBe(410);
      expect(res.body).toEqual({ error: expect.stringContaining('compacted'), code: 'EF_GONE' });
      const abort = new AbortController();
      const recent = await api.stream(`/apps?watch=true&resourceVersion=${await api.store.revision()}`, abort.signal);
      expect(recent.status).toBe(200);
      abort.abort();
    } finally {
      await api.close();
    }
  });

  it('ends open streams when the server closes', async () => {
    const api = await startTestApi();
    const res = await api.stream('/apps?watch=true', new AbortController().signal);
    await api.call('POST', '/apps', { body: appBody('bye') });
    const reader = new NdjsonReader(res);
    expect(summary(await reader.next())).toBe('ADDED bye');
    await api.close();
    expect(await reader.next()).toBeUndefined();
  });
});
